"""Tests of self-supervised pretraining: objectives, batches, configuration, runs."""
