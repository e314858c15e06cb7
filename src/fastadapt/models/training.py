"""The generic training loop every torch model of the project trains with.

`train_model(model, loss_fn, batches, config)` runs AdamW (no weight decay on biases and norms)
with linear warm-up and decay, gradient accumulation, clipping, a step budget and a wall-clock
budget, validation with early stopping (the best weights are restored at the end), a progress bar
(loss, non-padding tokens/s, ETA), and checkpoints that make a killed run resumable: restarted
with the same config, it ends with exactly the weights of a run that was never stopped.

Determinism. Batches come from a `BatchSource`, where (epoch, index) always gives the same batch,
and the torch generator is reseeded before each micro-batch from (seed, epoch, index), so
dropout depends on the data position only: same seed, data and config on CPU give identical
weights and losses, a resumed run replays exactly, and a data-parallel run sees the same dropout
masks as a single process.

Data parallel. When `torch.distributed` is initialised with more than one process (see
`fastadapt.models.distributed.run_distributed`), the model is wrapped in
`DistributedDataParallel` and `loss_fn` receives the wrapper: it must call the model (its
`forward`), not its submodules, so that gradients are averaged across processes. Sharding
interleaves micro-batches: optimiser step s with accumulation A on W processes consumes the
next A*W micro-batches of the (epoch, index) stream, and rank r takes every W-th of them starting
at r. So W processes with `grad_accum=A` compute exactly what one process with
`grad_accum=A*W` computes (same micro-batches, same dropout, gradients averaged), up to the
order of floating-point sums. `batch_size` is the per-process micro-batch size; the effective
batch is batch_size * grad_accum * world_size. Only rank 0 writes checkpoints and shows progress;
validation runs on rank 0 and its result is broadcast; all ranks stop together.

The bookkeeping around the step (budgets, best weights, early stopping, history rows, progress
bar, checkpoints, resume) is `LoopBook`, which `fastadapt.meta.train.meta_train` shares.

Why not `accelerate` (pinned) for device placement, mixed precision and DDP. Measured with
`scripts/bench_accelerate.py --steps 30 --repeats 5` (a tiny BERT masked-LM: 2 layers, width 128,
64 tokens, batch 16 x 2 accumulated, dropout 0.1; one torch thread; on the shared 2-core CPU
machine, medians of 5): this loop's step 8404 non-padding tokens per CPU second (5013 per wall
second), the same step through `Accelerator(cpu=True)` (prepare, autocast, backward,
clip_grad_norm_) 8395 (5272), with bit-identical weights, so exact resume and the dropout
reseeding would hold; `mixed_precision="bf16"` on CPU 9812 (5898), not identical (bf16
arithmetic; that comparison was fp32 against fp32). Not faster in fp32, and worse for this project:
- one `AcceleratorState` per process: a second `Accelerator` with another `mixed_precision` or
  device raises ValueError ("AcceleratorState has already been initialized and cannot be
  changed"), and one `kedro run` trains several models whose blocks set their own `device` and
  `mixed_precision` (pretraining, adaptation, the NER source tagger); only the private
  `AcceleratorState._reset_state` gets round it;
- no device per call: `device: cuda:1` would have to go through the process-wide
  `ACCELERATE_TORCH_DEVICE`; with several CPU processes it sets torch's thread count itself
  when OMP_NUM_THREADS is unset, overriding `num_threads`;
- `save_state` writes in place (a killed save leaves a half checkpoint), and the loop state it
  would hold as a registered object is loaded with `weights_only=False`
  (`accelerate.checkpointing.load_custom_state`), which can execute code; these checkpoints are
  written then renamed (`fastadapt.staging`) and read with `weights_only=True`;
- the interleaved sharding and the `no_sync` accumulation stay this loop's either way.
What it would replace is about 20 lines that call torch's own `torch.autocast` (through
`fastadapt.models.precision`, which picks bf16 where the CPU or GPU does it natively),
`torch.amp.GradScaler` and `DistributedDataParallel`, which is what `accelerate` calls too.
Not yet run on a GPU (no device in the measuring session).
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from fastadapt.config import Checks, Settings
from fastadapt.models.encoder import resolve_device
from fastadapt.models.precision import PRECISIONS, autocast, autocast_dtype
from fastadapt.staging import write_then_rename

log = logging.getLogger(__name__)

MIXED_PRECISION = PRECISIONS
STOP_REASONS = ("max_steps", "max_seconds", "early_stop")
CHECKPOINT_PREFIX = "step-"
CHECKPOINT_FILE = "state.pt"
KEEP_CHECKPOINTS = 2
HISTORY_COLUMNS = ("step", "loss", "lr", "tokens_per_second", "val_loss", "seconds")


@dataclass
class TrainingConfig(Settings):
    max_steps: int = 100  # optimiser steps (after accumulation)
    max_seconds: float | None = None  # wall-clock budget of this invocation; stop cleanly when exceeded
    batch_size: int = 32  # per process and micro-batch
    grad_accum: int = 1
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1  # linear warm-up then linear decay
    max_grad_norm: float | None = 1.0  # None or 0: no clipping
    eval_every: int = 50  # steps between validations (when a validate fn is given)
    early_stop_patience: int | None = None  # validations without improvement before stopping
    checkpoint_every: int | None = None
    checkpoint_dir: str | None = None  # resume from the newest checkpoint there if one exists
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda[:N]
    mixed_precision: str = "auto"  # auto (bf16 autocast where native, CPU or CUDA) | no | bf16 | fp16
    num_threads: int | None = None  # torch.set_num_threads on CPU
    log_every: int = 10

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = "training") -> TrainingConfig:
        """Validated settings; a wrong key or value raises `ConfigError` naming `training.<key>`."""
        return super().from_params(params, where)

    def validate(self, where: str = "training") -> None:
        check = Checks(self, where)
        check_loop_settings(check)
        check.integer("batch_size", 1)
        check.integer("grad_accum", 1)
        check.number("lr", 0, strict_low=True)
        check.number("weight_decay", 0)
        check.number("warmup_ratio", 0, 1)
        check.number("max_grad_norm", 0, optional=True)
        check.choice("mixed_precision", MIXED_PRECISION)


def check_loop_settings(check: Checks) -> None:
    """The settings every training loop has (`TrainingConfig`, `MetaConfig`): budgets, validation,
    checkpoints, seed, device, threads and logging."""
    check.integer("max_steps", 1)
    check.number("max_seconds", 0, optional=True, strict_low=True)
    check.integer("eval_every", 1)
    check.integer("early_stop_patience", 1, optional=True)
    check.integer("checkpoint_every", 1, optional=True)
    check.integer("seed", 0)
    check.integer("num_threads", 1, optional=True)
    check.integer("log_every", 1)
    if check.settings.checkpoint_dir is not None and not isinstance(check.settings.checkpoint_dir, (str, os.PathLike)):
        check.fail("checkpoint_dir", "allowed: a directory path or null")
    check.device()


class BatchSource(Protocol):
    """Deterministic batches: the same (epoch, index) always gives the same batch, so a resumed
    run continues from exactly the data position where it stopped."""

    def num_batches(self, epoch: int) -> int: ...

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]: ...


@dataclass
class TrainingResult:
    history: pd.DataFrame  # step, loss, lr, tokens_per_second, val_loss (NaN when not validated), seconds
    best_step: int | None
    stopped_early: bool
    stop_reason: str  # "max_steps" | "max_seconds" | "early_stop"
    seconds: float

    def summary(self) -> dict[str, Any]:
        """What a fitted model records of its training: steps, seconds, stop reason, best step, last loss."""
        history = self.history
        return {"steps": int(history["step"].iloc[-1]) if len(history) else 0,
                "seconds": round(float(self.seconds), 2), "stop_reason": self.stop_reason,
                "best_step": self.best_step,
                "final_loss": float(history["loss"].iloc[-1]) if len(history) else None}


# ---- helpers ----------------------------------------------------------------------------------


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a `DistributedDataParallel` wrapper (or the model itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def distributed_context() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless `torch.distributed` is initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def micro_batch_seed(seed: int, epoch: int, index: int) -> int:
    """The torch seed of one micro-batch: a function of the data position only."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _no_decay(name: str, parameter: torch.Tensor) -> bool:
    lowered = name.lower()
    return parameter.ndim < 2 or lowered.endswith("bias") or "norm" in lowered


def build_optimizer(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; biases and normalisation weights get no decay."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if _no_decay(name, parameter) else decay).append(parameter)
    if not decay and not no_decay:
        raise ValueError("train_model: the model has no trainable parameters (requires_grad)")
    groups = [g for g in ({"params": decay, "weight_decay": config.weight_decay},
                          {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
    # The fused kernel (CPU and CUDA) is several times faster than the per-parameter loop; models
    # whose parameters it does not take (devices, dtypes) fall back to the loop.
    try:
        return torch.optim.AdamW(groups, lr=config.lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(groups, lr=config.lr)


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
            for key, value in batch.items()}


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch generator states as tensors and plain types (weights_only-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {
        "python": [version, list(py_state), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of `module`'s state dict (checkpoints, best weights)."""
    return {key: value.detach().to("cpu", copy=True) for key, value in module.state_dict().items()}


def latest_checkpoint(directory: str | Path | None) -> Path | None:
    """The newest complete checkpoint in `directory`, or None."""
    if directory is None or not Path(directory).is_dir():
        return None
    found = []
    for path in Path(directory).glob(f"{CHECKPOINT_PREFIX}*"):
        suffix = path.name[len(CHECKPOINT_PREFIX):]
        if suffix.isdigit() and (path / CHECKPOINT_FILE).is_file():
            found.append((int(suffix), path))
    return max(found)[1] if found else None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by `train_model`, read with `torch.load(weights_only=True)`."""
    return torch.load(Path(path) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)


def write_checkpoint(directory: Path, step: int, state: Mapping[str, Any]) -> Path:
    """Atomically (`fastadapt.staging.write_then_rename`): a temporary folder renamed to step-<N>."""
    target = directory / f"{CHECKPOINT_PREFIX}{step:08d}"
    with write_then_rename(str(target)) as staging:
        Path(staging).mkdir()
        torch.save(dict(state), Path(staging) / CHECKPOINT_FILE)
    complete = sorted(
        (int(p.name[len(CHECKPOINT_PREFIX):]), p) for p in directory.glob(f"{CHECKPOINT_PREFIX}*")
        if p.name[len(CHECKPOINT_PREFIX):].isdigit()
    )
    for _, old in complete[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return target


class _DataCursor:
    """The position (epoch, index) in the stream of micro-batches, crossing epochs."""

    def __init__(self, batches: BatchSource, epoch: int = 0, index: int = 0) -> None:
        self.batches, self.epoch, self.index = batches, epoch, index

    def take(self, count: int) -> list[tuple[int, int]]:
        positions = []
        empty_epochs = 0
        while len(positions) < count:
            total = self.batches.num_batches(self.epoch)
            if self.index >= total:
                empty_epochs = empty_epochs + 1 if total == 0 else 0
                if empty_epochs > 1:
                    raise ValueError("train_model: the batch source has no batches")
                self.epoch, self.index = self.epoch + 1, 0
                continue
            positions.append((self.epoch, self.index))
            self.index += 1
        return positions


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:02d}:{seconds % 60:02d}"


def start_run(config: Any) -> torch.device:
    """The device of `config` (threads set on CPU) and every generator seeded from `config.seed`."""
    device = resolve_device(config.device)
    if device.type == "cpu" and config.num_threads:
        torch.set_num_threads(config.num_threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    return device


class LoopBook:
    """The bookkeeping both training loops share (`train_model` here, `fastadapt.meta.train`):
    step budget and wall-clock budget, best validation value and weights, early stopping, history
    rows, the progress bar, periodic and final checkpoints, resume, and the result's history.

    `best_key` names the best value in checkpoints ("best_loss" or "best_value"); `maximise` says
    whether a higher validation value is better. Only rank 0 writes checkpoints and shows progress.
    """

    def __init__(self, config: Any, description: str, columns: tuple[str, ...], best_key: str,
                 maximise: bool = False, rank: int = 0) -> None:
        self.config, self.description, self.columns = config, description, columns
        self.best_key, self.maximise, self.rank = best_key, maximise, rank
        self.started = time.perf_counter()
        self.step, self.rows = 0, []
        self.best_value, self.best_step, self.best_state = (-math.inf if maximise else math.inf), None, None
        self.bad_validations, self.elapsed_before, self.stop_reason = 0, 0.0, "max_steps"
        self.checkpoint_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else None
        if config.checkpoint_every and self.checkpoint_dir is None and rank == 0:
            log.warning("%s: checkpoint_every is set but checkpoint_dir is not: no checkpoints", description)
        self.start_step = 0

    # -- checkpoints --
    def state(self) -> dict[str, Any]:
        """The bookkeeping part of a checkpoint (the loop adds its model, optimiser and rng)."""
        return {
            "step": self.step, "history": [[float(row[c]) for c in self.columns] for row in self.rows],
            self.best_key: float(self.best_value), "best_step": self.best_step, "best_state": self.best_state,
            "bad_validations": self.bad_validations, "seconds": float(self.seconds()),
        }

    def resume(self, state: Mapping[str, Any] | None, validating: bool) -> None:
        """Continue from a checkpoint's `state()` part (None: a fresh run)."""
        if state is not None:
            self.step = state["step"]
            self.rows = [dict(zip(self.columns, values, strict=True)) for values in state["history"]]
            self.best_value, self.best_step = state[self.best_key], state["best_step"]
            self.best_state, self.bad_validations = state["best_state"], state["bad_validations"]
            self.elapsed_before = state["seconds"]
        self.start_step = self.step
        if validating and self._patience_spent():
            self.stop_reason = "early_stop"

    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint(self.checkpoint_dir)

    def _write(self, state: Callable[[], Mapping[str, Any]], final: bool = False) -> None:
        """Checkpoint every `checkpoint_every` steps, and (`final`) the end state if not just written;
        `state()` is called only when a checkpoint is written."""
        every = self.config.checkpoint_every
        due = bool(every) and self.step % every == 0
        if final:
            due = not due and self.step > self.start_step
        if self.checkpoint_dir is not None and self.rank == 0 and due:
            write_checkpoint(self.checkpoint_dir, self.step, state())

    # -- the loop --
    def running(self) -> bool:
        return self.step < self.config.max_steps and self.stop_reason != "early_stop"

    def seconds(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def over_time(self) -> bool:
        """Whether this invocation has used up `max_seconds`."""
        return self.config.max_seconds is not None and time.perf_counter() - self.started > self.config.max_seconds

    def validation_due(self, last: bool) -> bool:
        return self.step % self.config.eval_every == 0 or last

    def validated(self, value: float, weights: Callable[[], dict[str, torch.Tensor]]) -> None:
        """Record a validation value; a better one keeps `weights()` (CPU copies) as the best."""
        better = value > self.best_value if self.maximise else value < self.best_value
        if better:
            self.best_value, self.best_step, self.bad_validations = value, self.step, 0
            self.best_state = weights()
        else:
            self.bad_validations += 1
        if self._patience_spent():
            self.stop_reason = "early_stop"

    def _patience_spent(self) -> bool:
        patience = self.config.early_stop_patience
        return bool(patience) and self.bad_validations >= patience

    def row_due(self, last: bool, validated: bool) -> bool:
        return self.step % self.config.log_every == 0 or last or validated or self.stop_reason == "early_stop"

    def add_row(self, **values: float) -> None:
        self.rows.append({"step": self.step, **values, "seconds": self.seconds()})

    @contextmanager
    def loop(self, progress: bool, state: Callable[[], Mapping[str, Any]]) -> Iterator[None]:
        """Around the loop: the progress bar, and the end state checkpointed (a rerun resumes there)."""
        self._bar = tqdm(total=self.config.max_steps, initial=self.step, desc=self.description, unit="step",
                         disable=not progress or self.rank != 0, dynamic_ncols=True, leave=False)
        try:
            yield
        finally:
            self._bar.close()
        self._write(state, final=True)

    def end_step(self, state: Callable[[], Mapping[str, Any]], over_time: bool, **postfix: str) -> bool:
        """After a step: the bar, a checkpoint when due; whether to stop because the time budget
        is spent (not at the last step anyway)."""
        self._bar.update(1)
        self._bar.set_postfix(**postfix, refresh=False)
        self._write(state)
        if over_time and self.stop_reason != "early_stop" and self.step < self.config.max_steps:
            self.stop_reason = "max_seconds"
            return True
        return False

    def finish(self, restore: Callable[[dict[str, torch.Tensor]], Any] | None, measure: str) -> pd.DataFrame:
        """Restore the best weights (when validating), log the end, and give the history frame."""
        if restore is not None and self.best_state is not None:
            restore(self.best_state)
        history = pd.DataFrame(self.rows, columns=list(self.columns))
        history["step"] = history["step"].astype(int)
        if self.rank == 0:
            best = (f", best validation {measure} {self.best_value:.4f} at step {self.best_step}"
                    if self.best_step is not None else "")
            log.info("%s: %d steps, stop: %s, %.1f s%s", self.description, self.step, self.stop_reason,
                     self.seconds(), best)
        return history


# ---- the loop ---------------------------------------------------------------------------------


def train_model(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor],
    batches: BatchSource,
    config: TrainingConfig,
    validate: Callable[[torch.nn.Module], float] | None = None,
    description: str = "training",
    progress: bool = True,
) -> TrainingResult:
    """Train `model` in place (left on the training device); see the module docstring."""
    config.validate()
    rank, world_size = distributed_context()
    distributed = world_size > 1
    book = LoopBook(config, description, HISTORY_COLUMNS, best_key="best_loss", rank=rank)
    device = start_run(config)
    if distributed and device.type == "cuda":  # one GPU per process: the launcher set this one
        device = torch.device("cuda", torch.cuda.current_device())

    model.to(device)
    optimizer = build_optimizer(model, config)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(
        optimizer, num_warmup_steps=round(config.warmup_ratio * config.max_steps),
        num_training_steps=config.max_steps,
    )
    scaler = torch.amp.GradScaler("cuda") if autocast_dtype(config.mixed_precision, device) == torch.float16 else None

    data_epoch, data_index = 0, 0
    pending_loss, pending_steps, pending_tokens = 0.0, 0, 0.0
    resume_from = book.latest_checkpoint()
    if distributed:  # every rank resumes from the checkpoint rank 0 sees (a shared directory)
        chosen = [str(resume_from) if resume_from else None]
        torch.distributed.broadcast_object_list(chosen, src=0)
        resume_from = Path(chosen[0]) if chosen[0] else None
    state = load_checkpoint(resume_from) if resume_from is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        data_epoch, data_index = state["epoch"], state["index"]
        pending_loss, pending_steps, pending_tokens = state["pending"]
    book.resume(state, validating=validate is not None)
    if state is not None and rank == 0:
        log.info("%s: resumed from %s (step %d)", description, resume_from, book.step)

    forward_model = model
    if distributed:
        # find_unused_parameters: a model may hold parameters that a loss does not reach (a pooler)
        forward_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True,
        )
    cursor = _DataCursor(batches, data_epoch, data_index)
    model.train()

    def checkpoint_state() -> dict[str, Any]:
        return {
            "model": cpu_state(model), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else {},
            "rng": rng_state(), "epoch": cursor.epoch, "index": cursor.index, **book.state(),
            "pending": [float(pending_loss), int(pending_steps), float(pending_tokens)],
        }

    def run_validation() -> float:
        value = torch.zeros(1, dtype=torch.float64, device=device)
        if rank == 0:
            model.eval()
            with torch.no_grad(), autocast(config.mixed_precision, device):
                value[0] = float(validate(model))
            model.train()
        if distributed:
            torch.distributed.broadcast(value, src=0)
        return float(value[0])

    row_started = time.perf_counter()
    recent: deque[tuple[float, float]] = deque(maxlen=20)  # (seconds, tokens) of recent steps
    with book.loop(progress, checkpoint_state):
        while book.running():
            step_started = time.perf_counter()
            positions = cursor.take(config.grad_accum * world_size)[rank::world_size]
            optimizer.zero_grad(set_to_none=True)
            loss_sum = torch.zeros(2, dtype=torch.float64, device=device)  # loss, tokens
            for micro, (epoch, index) in enumerate(positions):
                batch = _to_device(batches.batch(epoch, index), device)
                torch.manual_seed(micro_batch_seed(config.seed, epoch, index))
                sync = micro == len(positions) - 1
                with (forward_model.no_sync() if distributed and not sync else nullcontext()):
                    with autocast(config.mixed_precision, device):
                        loss = loss_fn(forward_model, batch)
                    scaled = loss.float() / config.grad_accum
                    (scaler.scale(scaled) if scaler else scaled).backward()
                loss_sum[0] += loss.detach().double()
                loss_sum[1] += batch["attention_mask"].sum().double()
            if scaler:
                scaler.unscale_(optimizer)
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], config.max_grad_norm)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            book.step += 1

            totals = torch.cat([loss_sum, torch.tensor([float(book.over_time())], dtype=torch.float64,
                                                       device=device)])
            if distributed:
                torch.distributed.all_reduce(totals)
            step_loss = float(totals[0]) / (config.grad_accum * world_size)
            if not math.isfinite(step_loss):
                raise FloatingPointError(f"{description}: the loss is {step_loss} at step {book.step}")
            pending_loss, pending_steps, pending_tokens = (pending_loss + step_loss, pending_steps + 1,
                                                           pending_tokens + float(totals[1]))
            over_time = float(totals[2]) > 0

            last = book.step >= config.max_steps or over_time
            val_loss = math.nan
            if validate is not None and book.validation_due(last):
                val_loss = run_validation()
                book.validated(val_loss, lambda: cpu_state(model))
            if book.row_due(last, validated=not math.isnan(val_loss)):
                now = time.perf_counter()
                book.add_row(loss=pending_loss / pending_steps, lr=lr,
                             tokens_per_second=pending_tokens / max(now - row_started, 1e-9), val_loss=val_loss)
                pending_loss, pending_steps, pending_tokens, row_started = 0.0, 0, 0.0, now

            recent.append((time.perf_counter() - step_started, float(totals[1])))
            recent_seconds = sum(seconds for seconds, _ in recent)
            eta = (config.max_steps - book.step) * recent_seconds / len(recent)
            if config.max_seconds is not None:
                eta = min(eta, config.max_seconds - (time.perf_counter() - book.started))
            tokens_per_second = sum(tokens for _, tokens in recent) / max(recent_seconds, 1e-9)
            if book.end_step(checkpoint_state, over_time, loss=f"{step_loss:.4f}", tok_s=f"{tokens_per_second:,.0f}",
                             eta=_format_eta(eta)):
                break
    if distributed:
        torch.distributed.barrier()

    history = book.finish(model.load_state_dict if validate is not None else None, "loss")
    return TrainingResult(history=history, best_step=book.best_step, stopped_early=book.stop_reason == "early_stop",
                          stop_reason=book.stop_reason, seconds=book.seconds())
