"""meta_train: deterministic from seed, meta-validation and early stopping, exact resume."""

import numpy as np
import pandas as pd
import pytest
import torch

from fastadapt.meta import MetaConfig, build_algorithm, build_learner, meta_train
from fastadapt.meta.train import validation_episodes
from fastadapt.tasks.meta_episodes import LabelledEpisodeSource

from tests.meta.conftest import toy_rows

ROWS = toy_rows()
TRAIN = LabelledEpisodeSource(ROWS, classes=["sport", "money", "weather", "food"], n_way=3, k_shot=2, n_query=3)
VALID = LabelledEpisodeSource(ROWS, classes=["music", "travel"], n_way=2, k_shot=2, n_query=3)


class Crashing:
    """A training source that dies (like a killed process) when step `at` (1-based) starts."""

    def __init__(self, source, at, meta_batch_size=2):
        self.source, self.left = source, (at - 1) * meta_batch_size

    def sample(self, rng):
        if self.left == 0:
            raise KeyboardInterrupt("killed")
        self.left -= 1
        return self.source.sample(rng)


def run(tiny_backbone, progress=False, train=TRAIN, **params):
    settings = {"algorithm": "fomaml", "n_way": 3, "inner_lr": 0.5, "inner_steps": 2, "outer_lr": 1e-2,
                "meta_batch_size": 2, "max_steps": 6, "eval_every": 2, "eval_episodes": 3, "device": "cpu",
                "hidden_dropout": None, **params}
    settings.pop("hidden_dropout")
    config = MetaConfig.from_params(settings)
    learner = build_learner(tiny_backbone(seed=0, hidden_dropout_prob=0.1), config)
    algorithm = build_algorithm(learner, config)
    result = meta_train(learner, algorithm, train, VALID, config, progress=progress)
    return result, algorithm


def weights(algorithm):
    return {k: v.detach().clone() for k, v in algorithm.state_dict().items()}


def assert_same_weights(a, b):
    """Every tensor of both state dicts equal, and the same names in both (not zip: a shorter one
    would pass)."""
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys() and first
    different = [name for name in first if not torch.equal(first[name], second[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_history_and_validation(tiny_backbone):
    result, _ = run(tiny_backbone, progress=True, log_every=1)
    history = result.history
    assert list(history.columns) == ["step", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    assert history["step"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert history["val_accuracy"].notna().tolist() == [True, False, True, False, True, False, True]
    assert np.isnan(history["loss"].iloc[0])  # step 0: the starting weights, validated only
    assert result.stop_reason == "max_steps" and result.best_step in (0, 2, 4, 6)
    assert result.best_val_accuracy == history["val_accuracy"].max()


def test_same_seed_same_weights_and_history_with_dropout(tiny_backbone):
    first, a = run(tiny_backbone)
    second, b = run(tiny_backbone)
    pd.testing.assert_frame_equal(first.history.drop(columns="seconds"), second.history.drop(columns="seconds"))
    assert_same_weights(a, b)
    third, _ = run(tiny_backbone, seed=1)
    assert not third.history["loss"].equals(first.history["loss"])


@pytest.mark.parametrize("algorithm", ["fomaml", "protonet", "reptile"])
def test_resume_ends_exactly_where_an_uninterrupted_run_ends(tiny_backbone, tmp_path, algorithm):
    extra = {"protonet": {"algorithm": "protonet"}, "reptile": {"algorithm": "reptile", "inner_lr": 0.05},
             "fomaml": {}}[algorithm]
    whole, a = run(tiny_backbone, checkpoint_dir=str(tmp_path / "whole"), checkpoint_every=2, **extra)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_backbone, checkpoint_dir=str(tmp_path / "split"), checkpoint_every=2, train=Crashing(TRAIN, at=4),
            **extra)
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == ["step-00000002"]
    resumed, b = run(tiny_backbone, checkpoint_dir=str(tmp_path / "split"), checkpoint_every=2, **extra)
    pd.testing.assert_frame_equal(whole.history.drop(columns="seconds"), resumed.history.drop(columns="seconds"))
    assert resumed.best_step == whole.best_step
    assert_same_weights(a, b)
    again, _ = run(tiny_backbone, checkpoint_dir=str(tmp_path / "split"), checkpoint_every=2, **extra)
    assert again.history["step"].max() == 6  # nothing left to do: the finished run is not repeated


def test_early_stopping_restores_the_best_weights(tiny_backbone):
    result, algorithm = run(tiny_backbone, max_steps=40, eval_every=1, early_stop_patience=2, outer_lr=0.3)
    validated = result.history.dropna(subset=["val_accuracy"])
    assert result.stop_reason == "early_stop" and result.stopped_early
    assert len(validated) < 40
    assert (validated["val_accuracy"].iloc[-2:] <= result.best_val_accuracy).all()
    # patience 2: the last improvement is the third validation from the end, and it is the best
    assert len(validated) >= 3
    assert validated["step"].iloc[-3] == result.best_step
    assert validated["val_accuracy"].iloc[-3] == result.best_val_accuracy
    assert (validated["val_accuracy"].iloc[:-3] < result.best_val_accuracy).all()
    scores = [algorithm.evaluate(e) for e in validation_episodes(VALID, 0, 3)]
    assert np.mean([s["accuracy"] for s in scores]) == pytest.approx(result.best_val_accuracy)


def test_max_seconds_stops_cleanly(tiny_backbone):
    result, _ = run(tiny_backbone, max_steps=10_000, max_seconds=0.5)
    assert result.stop_reason == "max_seconds"
    assert result.history["step"].max() < 10_000


def test_algorithm_mismatch_on_resume_is_an_error(tiny_backbone, tmp_path):
    run(tiny_backbone, checkpoint_dir=str(tmp_path), max_steps=2)
    with pytest.raises(ValueError, match="algorithm 'fomaml', not 'protonet'"):
        run(tiny_backbone, checkpoint_dir=str(tmp_path), algorithm="protonet")
