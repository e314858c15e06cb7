"""The generic training loop on a toy model: config errors, determinism, resume, budgets, early stop."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from fastadapt.config import ConfigError
from fastadapt.models import training
from fastadapt.models.training import TrainingConfig, latest_checkpoint, load_checkpoint, train_model

torch.set_num_threads(1)

VOCAB, WIDTH = 40, 12


class ToyBatches:
    """7 batches an epoch of random token rows with ragged lengths; a function of (epoch, index)."""

    def __init__(self, batch_size: int = 4, n_batches: int = 7) -> None:
        self.batch_size, self.n_batches = batch_size, n_batches
        self.calls: list[tuple[int, int]] = []

    def num_batches(self, epoch: int) -> int:
        return self.n_batches

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        self.calls.append((epoch, index))
        generator = torch.Generator().manual_seed(1000 * epoch + index)
        ids = torch.randint(1, VOCAB, (self.batch_size, WIDTH), generator=generator)
        lengths = torch.randint(3, WIDTH + 1, (self.batch_size,), generator=generator)
        mask = (torch.arange(WIDTH)[None, :] < lengths[:, None]).long()
        return {"input_ids": ids * mask, "attention_mask": mask}


class ToyModel(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(VOCAB, 16)
        self.norm = nn.LayerNorm(16)
        self.dropout = nn.Dropout(0.3)
        self.out = nn.Linear(16, VOCAB)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.out(self.dropout(self.norm(self.embed(input_ids))))
        return nn.functional.cross_entropy(logits[attention_mask.bool()], input_ids[attention_mask.bool()])


def toy_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**batch)


def config(**overrides) -> TrainingConfig:
    base = {"max_steps": 12, "batch_size": 4, "lr": 1e-2, "warmup_ratio": 0.2, "eval_every": 4, "log_every": 2,
            "device": "cpu", "num_threads": 1, "seed": 3}
    return TrainingConfig(**{**base, **overrides})


def states_equal(first: nn.Module, second: nn.Module) -> bool:
    a, b = first.state_dict(), second.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def validation_of(batches: ToyBatches):
    def validate(model: nn.Module) -> float:
        return float(sum(model(**batches.batch(99, i)) for i in range(2)) / 2)
    return validate


# ---- configuration ------------------------------------------------------------------------------


def test_from_params_reads_every_key_and_defaults_the_rest():
    cfg = TrainingConfig.from_params({"max_steps": 7, "lr": 1e-4, "checkpoint_dir": "x", "checkpoint_every": 2})
    assert (cfg.max_steps, cfg.lr, cfg.checkpoint_dir, cfg.checkpoint_every) == (7, 1e-4, "x", 2)
    assert cfg.batch_size == 32 and cfg.device == "auto" and cfg.mixed_precision == "auto"
    assert TrainingConfig.from_params(None) == TrainingConfig()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_step": 3}, r"training: unknown setting\(s\) \['max_step'\].*allowed: \['max_steps'"),
        ({"max_steps": 0}, r"training\.max_steps is 0; allowed: an integer >= 1"),
        ({"max_steps": 2.5}, r"training\.max_steps"),
        ({"lr": -1}, r"training\.lr is -1; allowed: a number > 0"),
        ({"warmup_ratio": 1.0}, r"training\.warmup_ratio.*< 1"),
        ({"max_seconds": 0}, r"training\.max_seconds"),
        ({"mixed_precision": "fp8"}, r"training\.mixed_precision is 'fp8'; allowed: \['auto', 'no', 'bf16', 'fp16'\]"),
        ({"device": "tpu"}, r"training\.device is 'tpu'; allowed: auto, cpu or cuda\[:N\]"),
        ({"early_stop_patience": 0}, r"training\.early_stop_patience.*or null"),
        ({"batch_size": True}, r"training\.batch_size"),
    ],
)
def test_bad_training_settings_name_the_key_and_the_allowed_values(params, message):
    with pytest.raises(ConfigError, match=message):
        TrainingConfig.from_params(params)


# ---- the loop -----------------------------------------------------------------------------------


def test_same_seed_and_config_give_identical_weights_and_history():
    results, models = [], []
    for _ in range(2):
        model = ToyModel()
        batches = ToyBatches()
        results.append(train_model(model, toy_loss, batches, config(), validate=validation_of(batches),
                                   progress=False))
        models.append(model)
    assert states_equal(*models)
    columns = ["step", "loss", "lr", "val_loss"]
    pd.testing.assert_frame_equal(results[0].history[columns], results[1].history[columns])
    other = ToyModel()
    train_model(other, toy_loss, ToyBatches(), config(seed=4), progress=False)
    assert not states_equal(models[0], other)


def test_history_has_the_contract_columns_and_counts_non_padding_tokens():
    batches = ToyBatches()
    result = train_model(ToyModel(), toy_loss, batches, config(), validate=validation_of(batches), progress=False)
    history = result.history
    assert list(history.columns) == ["step", "loss", "lr", "tokens_per_second", "val_loss", "seconds"]
    assert history["step"].tolist() == [2, 4, 6, 8, 10, 12]
    assert history["val_loss"].notna().tolist() == [False, True, False, True, False, True]
    assert (history["tokens_per_second"] > 0).all() and history["seconds"].is_monotonic_increasing
    assert result.stop_reason == "max_steps" and not result.stopped_early
    # the lr each row's last step used: warm-up over 2 of 12 steps (step 1 at 0, step 2 at half),
    # then linear decay to 0
    assert history["lr"].tolist() == pytest.approx([5e-3, 9e-3, 7e-3, 5e-3, 3e-3, 1e-3])
    # data position: 12 steps x 2 micro-batches cross into the 4th epoch of 7 batches
    batches.calls.clear()
    train_model(ToyModel(), toy_loss, batches, config(grad_accum=2, max_steps=4), progress=False)
    assert batches.calls == [(0, i) for i in range(7)] + [(1, 0)]


class Crash(RuntimeError):
    pass


def crashing(after_calls: int):
    calls = {"n": 0}

    def loss(model, batch):
        calls["n"] += 1
        if calls["n"] > after_calls:
            raise Crash("killed")
        return toy_loss(model, batch)
    return loss


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_a_killed_run_resumed_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch, grad_accum):
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k.get("weights_only")) or real_load(*a, **k))
    validate = validation_of(ToyBatches())

    uninterrupted = ToyModel()
    full = train_model(uninterrupted, toy_loss, ToyBatches(), config(grad_accum=grad_accum),
                       validate=validate, progress=False)

    checkpointed = config(grad_accum=grad_accum, checkpoint_every=3, checkpoint_dir=str(tmp_path / "ckpt"))
    killed = ToyModel()
    # killed in step 8 or 9 (in the middle of a step with accumulation), after step 6's checkpoint
    with pytest.raises(Crash):
        train_model(killed, crashing(7 * grad_accum + 1), ToyBatches(), checkpointed, validate=validate,
                    progress=False)
    assert latest_checkpoint(tmp_path / "ckpt").name == "step-00000006"
    resumed_model = ToyModel(seed=123)  # a fresh process: other initial weights, other RNG state
    torch.manual_seed(999)
    resumed = train_model(resumed_model, toy_loss, ToyBatches(), checkpointed, validate=validate, progress=False)

    assert states_equal(uninterrupted, resumed_model)
    columns = ["step", "loss", "lr", "val_loss"]
    pd.testing.assert_frame_equal(full.history[columns], resumed.history[columns])
    assert resumed.best_step == full.best_step
    assert loads and all(flag is True for flag in loads)  # every torch.load is weights_only
    # the final state is checkpointed too: a rerun of a finished run returns at once, same weights
    again = ToyModel(seed=5)
    train_model(again, crashing(0), ToyBatches(), checkpointed, validate=validate, progress=False)
    assert states_equal(uninterrupted, again)
    kept = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert kept == ["step-00000009", "step-00000012"]  # only the newest two, no temporary folders
    state = load_checkpoint(tmp_path / "ckpt" / "step-00000012")
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "index", "step"} <= set(state)


def test_the_time_budget_stops_cleanly():
    slow_calls = {"n": 0}

    def slow_loss(model, batch):
        slow_calls["n"] += 1
        if slow_calls["n"] == 3:
            import time
            time.sleep(0.3)
        return toy_loss(model, batch)

    result = train_model(ToyModel(), slow_loss, ToyBatches(), config(max_seconds=0.2, max_steps=1000),
                         progress=False)
    assert result.stop_reason == "max_seconds"
    assert result.history["step"].iloc[-1] == 3  # of 1000


def test_early_stopping_restores_the_best_weights():
    scores = iter([5.0, 3.0, 4.0, 4.5, 6.0, 7.0])
    snapshots = []

    def validate(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    model = ToyModel()
    result = train_model(model, toy_loss, ToyBatches(), config(max_steps=100, eval_every=2, early_stop_patience=2),
                         validate=validate, progress=False)
    assert result.stopped_early and result.stop_reason == "early_stop"
    assert result.best_step == 4 and result.history["step"].iloc[-1] == 8
    assert all(torch.equal(model.state_dict()[k], snapshots[1][k]) for k in snapshots[1])
    assert result.history["val_loss"].dropna().tolist() == [5.0, 3.0, 4.0, 4.5]


def test_only_trainable_parameters_are_optimised_and_biases_get_no_decay():
    model = ToyModel()
    model.embed.weight.requires_grad_(False)
    frozen = model.embed.weight.detach().clone()
    train_model(model, toy_loss, ToyBatches(), config(max_steps=3), progress=False)
    assert torch.equal(model.embed.weight, frozen)
    optimizer = training.build_optimizer(model, config())
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model.out.weight)}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 4  # norm weight+bias, out weight+bias


def test_a_non_finite_loss_stops_with_a_message():
    def nan_loss(model, batch):
        return toy_loss(model, batch) * math.nan

    with pytest.raises(FloatingPointError, match="loss is nan at step 1"):
        train_model(ToyModel(), nan_loss, ToyBatches(), config(), progress=False)


def test_a_checkpoint_write_that_dies_leaves_the_previous_checkpoint_whole(tmp_path):
    from fastadapt.models.training import write_checkpoint

    write_checkpoint(tmp_path, 3, {"weights": torch.ones(2)})
    with pytest.raises(Exception, match="pickle|lambda"):  # torch.save dies half way through the state
        write_checkpoint(tmp_path, 3, {"weights": torch.zeros(2), "unpicklable": lambda: None})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000003"]
    assert torch.equal(load_checkpoint(tmp_path / "step-00000003")["weights"], torch.ones(2))
