"""Pretraining runs on tiny-bert: determinism, resume after a kill, two processes, minilm-l6."""

from __future__ import annotations

import dataclasses
import socket

import pytest
import torch

from fastadapt.models.backbones import Backbone, BackboneError
from fastadapt.models.training import latest_checkpoint
from fastadapt.pretraining import PretrainingConfig, checkpoint_fingerprint, pretrain
from fastadapt.pretraining import objectives as objectives_module

from tests.pretraining.conftest import tiny_params

HISTORY = ["step", "loss", "lr", "val_loss"]


def encoder_state(backbone: Backbone) -> dict[str, torch.Tensor]:
    return backbone.model.state_dict()


def assert_same_weights(first: Backbone, second: Backbone) -> None:
    a, b = encoder_state(first), encoder_state(second)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ: {different[:5]}"


def test_same_seed_same_data_same_config_give_identical_weights_and_metrics(texts, tokenizer):
    config = PretrainingConfig.from_params(tiny_params(whole_word_masking=True))
    first = pretrain(texts, config, tokenizer, progress=False)
    second = pretrain(texts, config, tokenizer, progress=False)
    assert_same_weights(first.backbone, second.backbone)
    assert first.result.history[HISTORY].equals(second.result.history[HISTORY])
    history = first.result.history
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]  # it learns
    assert history["val_loss"].notna().sum() == 2
    other = pretrain(texts, dataclasses.replace(config, training=dataclasses.replace(config.training, seed=1)),
                     tokenizer, progress=False)
    assert not first.result.history["loss"].equals(other.result.history["loss"])


def test_a_killed_pretraining_resumed_ends_with_the_same_weights(texts, tokenizer, tmp_path, monkeypatch):
    params = tiny_params(training={"max_steps": 10, "grad_accum": 2, "checkpoint_every": 4,
                                   "checkpoint_dir": str(tmp_path / "checkpoints")})
    config = PretrainingConfig.from_params(params)
    uninterrupted = pretrain(texts, dataclasses.replace(
        config, training=dataclasses.replace(config.training, checkpoint_dir=None)), tokenizer, progress=False)

    real_loss, calls = objectives_module.pretraining_loss, {"n": 0}

    def killed(model, batch):
        calls["n"] += 1
        if calls["n"] > 13:  # inside step 7 (2 micro-batches a step), after the checkpoint of step 4
            raise KeyboardInterrupt
        return real_loss(model, batch)

    import fastadapt.pretraining as package

    monkeypatch.setattr(package, "pretraining_loss", killed)
    with pytest.raises(KeyboardInterrupt):
        pretrain(texts, config, tokenizer, progress=False)
    monkeypatch.setattr(package, "pretraining_loss", real_loss)
    folder = tmp_path / "checkpoints" / checkpoint_fingerprint(texts, config, tokenizer)
    assert latest_checkpoint(folder).name == "step-00000004"

    resumed = pretrain(texts, config, tokenizer, progress=False)
    assert_same_weights(uninterrupted.backbone, resumed.backbone)
    assert uninterrupted.result.history[HISTORY].equals(resumed.result.history[HISTORY])
    assert latest_checkpoint(folder).name == "step-00000010"
    # another configuration never resumes from these checkpoints
    changed = dataclasses.replace(config, mlm_probability=0.2)
    assert checkpoint_fingerprint(texts, changed) != checkpoint_fingerprint(texts, config)
    budget = dataclasses.replace(config, training=dataclasses.replace(config.training, max_seconds=5.0))
    assert checkpoint_fingerprint(texts, budget) == checkpoint_fingerprint(texts, config)
    assert checkpoint_fingerprint(texts, config, tokenizer) != checkpoint_fingerprint(texts, config)
    assert checkpoint_fingerprint(texts[1:], config) != checkpoint_fingerprint(texts, config)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(texts, tokenizer):
    """2 processes x grad_accum 1 see the micro-batches that 1 process x grad_accum 2 sees."""
    single = PretrainingConfig.from_params(tiny_params(training={"max_steps": 6, "grad_accum": 2}))
    double = PretrainingConfig.from_params(tiny_params(
        training={"max_steps": 6, "grad_accum": 1},
        distributed={"nproc_per_node": 2, "backend": "gloo", "rdzv_endpoint": f"127.0.0.1:{free_port()}"},
    ))
    one = pretrain(texts, single, tokenizer, progress=False)
    two = pretrain(texts, double, tokenizer, progress=False)
    a, b = encoder_state(one.backbone), encoder_state(two.backbone)
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst < 1e-4, worst
    assert two.result.history["loss"].tolist() == pytest.approx(one.result.history["loss"].tolist(), rel=1e-5)
    assert two.result.history["val_loss"].dropna().tolist() == pytest.approx(
        one.result.history["val_loss"].dropna().tolist(), rel=1e-5)
    # and the weights moved: the comparison is not between two untrained models
    untouched = PretrainingConfig.from_params(tiny_params(training={"max_steps": 1, "lr": 1e-9}))
    start = encoder_state(pretrain(texts, untouched, tokenizer, progress=False).backbone)
    assert max(float((a[k].float() - start[k].float()).abs().max()) for k in a) > 1e-3


def test_an_unknown_backbone_is_a_clear_error(texts, tokenizer):
    with pytest.raises(BackboneError, match=r"backbone 'tiny-bert' needs the WordPiece tokeniser"):
        pretrain(texts, PretrainingConfig.from_params(tiny_params()), tokenizer=None, progress=False)
    with pytest.raises(BackboneError, match=r"backbone 'nobody/nothing' could not be loaded.*offline"):
        pretrain(texts, PretrainingConfig.from_params({**tiny_params(backbone="nobody/nothing"),
                                                       "backbone_config": {}}), progress=False)


@pytest.mark.slow
def test_minilm_continued_pretraining_starts_from_its_weights_with_a_fresh_head(texts):
    from fastadapt.models.backbones import load_backbone

    params = tiny_params(backbone="minilm-l6", backbone_config={}, max_texts=40,
                         training={"max_steps": 2, "batch_size": 4, "lr": 1e-5})
    output = pretrain(texts, PretrainingConfig.from_params(params), progress=False)
    original = load_backbone("minilm-l6").model.state_dict()
    trained = output.backbone.model.state_dict()
    assert trained.keys() == original.keys()  # the encoder alone: the heads are not saved with it
    drift = max(float((trained[k] - original[k]).abs().max()) for k in original if trained[k].is_floating_point())
    assert 0 < drift < 1e-3
    assert output.backbone.name == "minilm-l6" and len(output.result.history) == 1


@pytest.mark.parametrize("change", [{"device": "auto"}, {"max_seconds": 5.0}, {"num_threads": 2}, {"log_every": 3},
                                    {"checkpoint_every": 2}, {"checkpoint_dir": "elsewhere"}])
def test_the_checkpoint_fingerprint_leaves_out_what_does_not_shape_the_weights(texts, change):
    config = PretrainingConfig.from_params(tiny_params())
    changed = dataclasses.replace(config, training=dataclasses.replace(config.training, **change))
    assert checkpoint_fingerprint(texts, changed) == checkpoint_fingerprint(texts, config)
    faster = dataclasses.replace(config, training=dataclasses.replace(config.training, lr=2e-3))
    assert checkpoint_fingerprint(texts, faster) != checkpoint_fingerprint(texts, config)
    two = dataclasses.replace(config, distributed=dataclasses.replace(config.distributed, nproc_per_node=2))
    assert checkpoint_fingerprint(texts, two) != checkpoint_fingerprint(texts, config)
