"""Tests of the predictor protocols, their evaluation tables and the classical baselines."""
