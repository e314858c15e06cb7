"""`PretrainingConfig.from_params`: the shipped parameter files, and errors that name the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fastadapt.config import ConfigError
from fastadapt.pretraining.config import PretrainingConfig

from tests.pretraining.conftest import tiny_params

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_the_shipped_quick_and_full_parameters_are_valid():
    base = yaml.safe_load((CONF / "base" / "parameters_pretraining.yml").read_text())["pretraining"]
    quick = PretrainingConfig.from_params(base)
    assert quick.backbone == "minilm-l6" and quick.active_objectives == {"mlm": 1.0, "contrastive": 0.5}
    assert quick.max_texts <= 5000 and quick.training.max_steps <= 50 and quick.training.max_seconds <= 300
    full = yaml.safe_load((CONF / "full" / "parameters_pretraining.yml").read_text())["pretraining"]
    merged = {**base, **full, "training": {**base["training"], **full["training"]}}
    config = PretrainingConfig.from_params(merged)
    assert config.max_texts is None and config.training.max_steps >= 1000 and config.training.checkpoint_dir


def test_defaults_and_objective_lists():
    config = PretrainingConfig.from_params({})
    assert config.backbone == "minilm-l6" and config.objectives == {"mlm": 1.0}
    assert config.distributed.world_size == 1 and config.training.max_steps == 100
    assert PretrainingConfig.from_params({"objectives": ["mlm", "contrastive"]}).active_objectives == {
        "mlm": 1.0, "contrastive": 1.0}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"backbone": "gpt-9000"}, r"pretraining\.backbone is 'gpt-9000'; allowed: \['minilm-l6', 'tiny-bert'\]"),
        ({"objectives": {"mlm": 1, "next_sentence": 1}},
         r"pretraining\.objectives: unknown objective\(s\) \['next_sentence'\]; allowed: \['mlm', 'contrastive'\]"),
        ({"objective": {"mlm": 1}}, r"pretraining: unknown setting\(s\) \['objective'\]"),
        ({"mlm_probability": 1.5}, r"pretraining\.mlm_probability is 1\.5; allowed: a number > 0 and < 1$"),
        ({"temperature": 0}, r"pretraining\.temperature is 0; allowed: a number > 0$"),
        ({"validation_fraction": True}, r"pretraining\.validation_fraction is True; allowed: a number >= 0 and < 1"),
        ({"max_length": 3}, r"pretraining\.max_length is 3; allowed: an integer >= 4$"),
        ({"whole_word_masking": "yes"}, r"pretraining\.whole_word_masking is 'yes'; allowed: true or false"),
        ({"pooling": "max"}, r"pretraining\.pooling is 'max'; allowed: \['mean', 'cls'\]"),
        ({"max_texts": 1}, r"pretraining\.max_texts is 1; allowed: an integer >= 2 or null"),
        ({"training": {"batch_size": 0}}, r"pretraining\.training\.batch_size is 0; allowed: an integer >= 1"),
        ({"training": {"epochs": 3}}, r"pretraining\.training: unknown setting\(s\) \['epochs'\]"),
        ({"distributed": {"nproc_per_node": 0}}, r"pretraining\.distributed\.nproc_per_node is 0"),
        ({"distributed": {"backend": "mpi"}},
         r"pretraining\.distributed\.backend is 'mpi'; allowed: \['auto', 'gloo', 'nccl'\]"),
        ({"distributed": {"node_rank": 1}}, r"pretraining\.distributed\.node_rank is 1; allowed: 0 to nnodes-1 = 0"),
        ({"distributed": {"rdzv_endpoint": "here"}}, r"pretraining\.distributed\.rdzv_endpoint is 'here'"),
        ({"objectives": {"mlm": 0}}, r"pretraining\.objectives: every weight is 0"),
        ({"objectives": {"mlm": True}}, r"pretraining\.objectives\.mlm is True; allowed: a weight >= 0"),
        ({"backbone": "minilm-l6", "backbone_config": {"hidden_size": 8}}, r"pretraining\.backbone_config"),
    ],
)
def test_bad_settings_raise_a_config_error_naming_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        PretrainingConfig.from_params(params)


def test_yaml_integers_become_floats_and_a_null_backbone_config_is_empty():
    config = PretrainingConfig.from_params({"temperature": 1, "backbone_config": None})
    assert isinstance(config.temperature, float) and config.backbone_config == {}


def test_tiny_params_are_valid():
    assert PretrainingConfig.from_params(tiny_params()).backbone == "tiny-bert"
