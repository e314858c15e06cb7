"""The meta-training loop: episodes in, a learner that adapts fast out.

`meta_train(learner, algorithm, train_source, valid_source, config)` runs outer steps of
`algorithm.meta_train_step` on meta-batches of episodes, within a step budget and a wall-clock
budget; every `eval_every` steps it meta-validates on a fixed set of episodes of held-out classes
(adapt on support, accuracy on query, exactly as meta-test), stops early after
`early_stop_patience` validations without a better accuracy, and restores the best weights at
the end. The starting weights are validated first (history row of step 0), so a run that never
beats them gives them back. A tqdm bar shows loss, accuracy and validation accuracy.

Determinism and resume. Episode b of step s is drawn with `rng([seed, 0, s, b])` and the
validation episodes with `rng([seed, 1, i])`; the torch generator is reseeded before each step
from (seed, s) (dropout). So the same seed and config on CPU give identical weights and history,
and a run restarted from a checkpoint (written every `checkpoint_every` steps and at the end, with
the checkpoint helpers of `fastadapt.models.training`: atomic, `torch.load(weights_only=True)`)
ends exactly where an uninterrupted run ends. The budgets, best weights, early stopping, history
rows, progress bar and checkpoints are `fastadapt.models.training.LoopBook`'s, shared with
`train_model`; this module has only what is meta-learning's own (episodes, meta-validation).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from fastadapt.meta.algorithm import MetaAlgorithm
from fastadapt.meta.config import MetaConfig
from fastadapt.meta.learner import MetaLearner
from fastadapt.models.training import (
    LoopBook,
    cpu_state,
    load_checkpoint,
    micro_batch_seed,
    rng_state,
    set_rng_state,
    start_run,
)
from fastadapt.tasks.meta_episodes import EpisodeSource, TextEpisode

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("step", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
TRAIN_STREAM, VALID_STREAM = 0, 1


@dataclass
class MetaTrainingResult:
    history: pd.DataFrame  # step, loss, accuracy, val_loss, val_accuracy (NaN when not validated), seconds
    best_step: int | None
    best_val_accuracy: float | None
    stopped_early: bool
    stop_reason: str  # "max_steps" | "max_seconds" | "early_stop"
    seconds: float


def train_episodes(source: EpisodeSource, seed: int, step: int, meta_batch_size: int) -> list[TextEpisode]:
    """The meta-batch of step `step` (0-based): episode b drawn with `rng([seed, 0, step, b])`."""
    return [source.sample(np.random.default_rng([seed, TRAIN_STREAM, step, b])) for b in range(meta_batch_size)]


def validation_episodes(source: EpisodeSource, seed: int, count: int) -> list[TextEpisode]:
    """The fixed meta-validation episodes: episode i drawn with `rng([seed, 1, i])`."""
    return [source.sample(np.random.default_rng([seed, VALID_STREAM, i])) for i in range(count)]


def meta_validate(algorithm: MetaAlgorithm, episodes: list[TextEpisode]) -> dict[str, float]:
    """Mean query loss and accuracy after adaptation, over the validation episodes."""
    scores = [algorithm.evaluate(episode) for episode in episodes]
    return {"loss": float(np.mean([s["loss"] for s in scores])),
            "accuracy": float(np.mean([s["accuracy"] for s in scores]))}


def meta_train(
    learner: MetaLearner,
    algorithm: MetaAlgorithm,
    train_source: EpisodeSource,
    valid_source: EpisodeSource | None,
    config: MetaConfig,
    progress: bool = True,
    description: str | None = None,
) -> MetaTrainingResult:
    """Meta-train `algorithm` (which holds `learner`) in place; see the module docstring."""
    if algorithm.learner is not learner:
        raise ValueError("meta_train: algorithm.learner must be the learner passed in")
    config.validate()
    description = description or f"meta-training ({algorithm.name})"
    book = LoopBook(config, description, HISTORY_COLUMNS, best_key="best_value", maximise=True)
    algorithm.to(start_run(config))

    valid = validation_episodes(valid_source, config.seed, config.eval_episodes) if valid_source else []
    pending = [0.0, 0.0, 0]
    resume_from = book.latest_checkpoint()
    state = load_checkpoint(resume_from) if resume_from is not None else None
    if state is not None:
        if state.get("algorithm_name") != algorithm.name:
            raise ValueError(f"{description}: the checkpoint in {resume_from} is of algorithm "
                             f"{state.get('algorithm_name')!r}, not {algorithm.name!r}")
        algorithm.load_training_state(state["algorithm"])
        set_rng_state(state["rng"])
        pending = list(state["pending"])
        log.info("%s: resumed from %s (step %d)", description, resume_from, state["step"])
    book.resume(state, validating=bool(valid))

    def checkpoint_state() -> dict[str, Any]:
        return {"algorithm_name": algorithm.name, "algorithm": algorithm.training_state(), "rng": rng_state(),
                **book.state(), "pending": [float(pending[0]), float(pending[1]), int(pending[2])]}

    if valid and book.step == 0:  # the starting point competes too: meta-training must beat it
        scores = meta_validate(algorithm, valid)
        book.best_value, book.best_step, book.best_state = scores["accuracy"], 0, cpu_state(algorithm)
        book.add_row(loss=math.nan, accuracy=math.nan, val_loss=scores["loss"], val_accuracy=scores["accuracy"])

    last_val = book.rows[-1]["val_accuracy"] if book.rows else math.nan
    with book.loop(progress, checkpoint_state):
        while book.running():
            episodes = train_episodes(train_source, config.seed, book.step, config.meta_batch_size)
            torch.manual_seed(micro_batch_seed(config.seed, TRAIN_STREAM, book.step))
            result = algorithm.meta_train_step(episodes)
            if not math.isfinite(result["loss"]):
                raise FloatingPointError(f"{description}: the loss is {result['loss']} at step {book.step + 1}")
            book.step += 1
            pending = [pending[0] + result["loss"], pending[1] + result["accuracy"], pending[2] + 1]
            over_time = book.over_time()
            last = book.step >= config.max_steps or over_time

            val_loss = val_accuracy = math.nan
            if valid and book.validation_due(last):
                scores = meta_validate(algorithm, valid)
                val_loss, val_accuracy = scores["loss"], scores["accuracy"]
                last_val = val_accuracy
                book.validated(val_accuracy, lambda: cpu_state(algorithm))
            if book.row_due(last, validated=not math.isnan(val_loss)):
                book.add_row(loss=pending[0] / pending[2], accuracy=pending[1] / pending[2], val_loss=val_loss,
                             val_accuracy=val_accuracy)
                pending = [0.0, 0.0, 0]
            if book.end_step(checkpoint_state, over_time, loss=f"{result['loss']:.3f}",
                             acc=f"{result['accuracy']:.2f}", val_acc=f"{last_val:.3f}"):
                break

    history = book.finish(algorithm.load_state_dict if valid else None, "accuracy")
    return MetaTrainingResult(
        history=history, best_step=book.best_step,
        best_val_accuracy=None if book.best_step is None else float(book.best_value),
        stopped_early=book.stop_reason == "early_stop", stop_reason=book.stop_reason, seconds=book.seconds(),
    )
