"""The one checkpoint fingerprint rule: what shapes the weights counts, budgets and devices do not."""

from __future__ import annotations

import dataclasses

import pytest

from fastadapt.meta.config import MetaConfig
from fastadapt.models.checkpoints import (
    UNFINGERPRINTED,
    checkpoint_fingerprint,
    run_checkpoint_dir,
)
from fastadapt.models.training import TrainingConfig

LEFT_OUT = {"max_seconds": 5.0, "device": "cpu", "num_threads": 3, "log_every": 7, "checkpoint_dir": "elsewhere",
            "checkpoint_every": 11}


@pytest.mark.parametrize("config", [TrainingConfig(), MetaConfig()], ids=["training", "meta"])
@pytest.mark.parametrize("key", sorted(LEFT_OUT))
def test_a_left_out_field_keeps_the_fingerprint_even_nested(config, key):
    changed = dataclasses.replace(config, **{key: LEFT_OUT[key]})
    assert getattr(changed, key) != getattr(config, key)
    assert checkpoint_fingerprint({"config": config}) == checkpoint_fingerprint({"config": changed})
    assert checkpoint_fingerprint({"outer": {"config": [config]}}) == checkpoint_fingerprint(
        {"outer": {"config": [changed]}})


def test_the_rule_leaves_out_exactly_the_fields_that_do_not_change_the_weights():
    assert UNFINGERPRINTED == set(LEFT_OUT)


@pytest.mark.parametrize("config, key, value", [(TrainingConfig(), "lr", 1.0e-3), (TrainingConfig(), "seed", 1),
                                                (MetaConfig(), "outer_lr", 1.0e-3), (MetaConfig(), "max_steps", 3)])
def test_a_field_that_shapes_the_weights_changes_the_fingerprint(config, key, value):
    changed = dataclasses.replace(config, **{key: value})
    assert checkpoint_fingerprint({"config": config}) != checkpoint_fingerprint({"config": changed})


def test_texts_and_their_order_change_the_fingerprint():
    assert checkpoint_fingerprint({}, ["a", "b"]) != checkpoint_fingerprint({}, ["b", "a"])
    assert checkpoint_fingerprint({}, ["ab"]) != checkpoint_fingerprint({}, ["a", "b"])
    assert len(checkpoint_fingerprint({})) == 16


def test_a_run_folder_is_named_by_the_run_and_the_fingerprint(tmp_path):
    config = MetaConfig()
    folder = run_checkpoint_dir(str(tmp_path), "protonet_s01", {"config": config})
    assert folder == str(tmp_path / f"protonet_s01-{checkpoint_fingerprint({'config': config})}")
    assert run_checkpoint_dir(None, "protonet_s01", {"config": config}) is None
