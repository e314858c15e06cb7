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
ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from fastadapt.meta.algorithm import MetaAlgorithm
from fastadapt.meta.config import MetaConfig
from fastadapt.meta.learner import MetaLearner
from fastadapt.models.encoder import resolve_device
from fastadapt.models.training import (
    latest_checkpoint,
    load_checkpoint,
    micro_batch_seed,
    rng_state,
    set_rng_state,
    write_checkpoint,
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
    started = time.perf_counter()
    device = resolve_device(config.device)
    if device.type == "cpu" and config.num_threads:
        torch.set_num_threads(config.num_threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    algorithm.to(device)

    valid = validation_episodes(valid_source, config.seed, config.eval_episodes) if valid_source else []
    step, rows = 0, []
    best_value, best_step, best_state, bad_validations = -math.inf, None, None, 0
    elapsed_before, pending = 0.0, [0.0, 0.0, 0]
    stop_reason = "max_steps"

    checkpoint_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    if config.checkpoint_every and checkpoint_dir is None:
        log.warning("%s: checkpoint_every is set but checkpoint_dir is not: no checkpoints", description)
    resume_from = latest_checkpoint(checkpoint_dir)
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        if state.get("algorithm_name") != algorithm.name:
            raise ValueError(f"{description}: the checkpoint in {resume_from} is of algorithm "
                             f"{state.get('algorithm_name')!r}, not {algorithm.name!r}")
        algorithm.load_training_state(state["algorithm"])
        set_rng_state(state["rng"])
        step = state["step"]
        rows = [dict(zip(HISTORY_COLUMNS, values)) for values in state["history"]]
        best_value, best_step = state["best_value"], state["best_step"]
        best_state, bad_validations = state["best_state"], state["bad_validations"]
        elapsed_before, pending = state["seconds"], list(state["pending"])
        log.info("%s: resumed from %s (step %d)", description, resume_from, step)
    start_step = step
    if valid and config.early_stop_patience and bad_validations >= config.early_stop_patience:
        stop_reason = "early_stop"

    def checkpoint_state() -> dict[str, Any]:
        return {
            "algorithm_name": algorithm.name, "algorithm": algorithm.training_state(), "rng": rng_state(),
            "step": step, "history": [[float(row[c]) for c in HISTORY_COLUMNS] for row in rows],
            "best_value": float(best_value), "best_step": best_step, "best_state": best_state,
            "bad_validations": bad_validations,
            "seconds": float(elapsed_before + time.perf_counter() - started),
            "pending": [float(pending[0]), float(pending[1]), int(pending[2])],
        }

    if valid and step == 0:  # the starting point competes too: meta-training must beat it
        scores = meta_validate(algorithm, valid)
        best_value, best_step = scores["accuracy"], 0
        best_state = {k: v.detach().to("cpu", copy=True) for k, v in algorithm.state_dict().items()}
        rows.append({"step": 0, "loss": math.nan, "accuracy": math.nan, "val_loss": scores["loss"],
                     "val_accuracy": scores["accuracy"], "seconds": time.perf_counter() - started})

    bar = tqdm(total=config.max_steps, initial=step, desc=description, unit="step",
               disable=not progress, dynamic_ncols=True, leave=False)
    last_val = rows[-1]["val_accuracy"] if rows else math.nan
    try:
        while step < config.max_steps and stop_reason != "early_stop":
            episodes = train_episodes(train_source, config.seed, step, config.meta_batch_size)
            torch.manual_seed(micro_batch_seed(config.seed, TRAIN_STREAM, step))
            result = algorithm.meta_train_step(episodes)
            if not math.isfinite(result["loss"]):
                raise FloatingPointError(f"{description}: the loss is {result['loss']} at step {step + 1}")
            step += 1
            pending = [pending[0] + result["loss"], pending[1] + result["accuracy"], pending[2] + 1]
            over_time = config.max_seconds is not None and time.perf_counter() - started > config.max_seconds
            last = step >= config.max_steps or over_time

            val_loss = val_accuracy = math.nan
            if valid and (step % config.eval_every == 0 or last):
                scores = meta_validate(algorithm, valid)
                val_loss, val_accuracy = scores["loss"], scores["accuracy"]
                last_val = val_accuracy
                if val_accuracy > best_value:
                    best_value, best_step, bad_validations = val_accuracy, step, 0
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in algorithm.state_dict().items()}
                else:
                    bad_validations += 1
                if config.early_stop_patience and bad_validations >= config.early_stop_patience:
                    stop_reason = "early_stop"
            if step % config.log_every == 0 or last or not math.isnan(val_loss) or stop_reason == "early_stop":
                rows.append({"step": step, "loss": pending[0] / pending[2], "accuracy": pending[1] / pending[2],
                             "val_loss": val_loss, "val_accuracy": val_accuracy,
                             "seconds": elapsed_before + time.perf_counter() - started})
                pending = [0.0, 0.0, 0]
            bar.update(1)
            bar.set_postfix(loss=f"{result['loss']:.3f}", acc=f"{result['accuracy']:.2f}",
                            val_acc=f"{last_val:.3f}", refresh=False)
            if checkpoint_dir is not None and config.checkpoint_every and step % config.checkpoint_every == 0:
                write_checkpoint(checkpoint_dir, step, checkpoint_state())
            if over_time and stop_reason != "early_stop" and step < config.max_steps:
                stop_reason = "max_seconds"
                break
    finally:
        bar.close()
    written = config.checkpoint_every and step % config.checkpoint_every == 0
    if checkpoint_dir is not None and step > start_step and not written:
        write_checkpoint(checkpoint_dir, step, checkpoint_state())  # the end state: a rerun resumes here

    if valid and best_state is not None:
        algorithm.load_state_dict(best_state)
    seconds = elapsed_before + time.perf_counter() - started
    history = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    history["step"] = history["step"].astype(int)
    log.info("%s: %d steps, stop: %s, %.1f s%s", description, step, stop_reason, seconds,
             f", best validation accuracy {best_value:.4f} at step {best_step}" if best_step is not None else "")
    return MetaTrainingResult(
        history=history, best_step=best_step,
        best_val_accuracy=None if best_step is None else float(best_value),
        stopped_early=stop_reason == "early_stop", stop_reason=stop_reason, seconds=seconds,
    )
