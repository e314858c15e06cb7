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
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from fastadapt.config import Checks, Settings
from fastadapt.models.encoder import resolve_device
from fastadapt.staging import write_then_rename

log = logging.getLogger(__name__)

MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
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
    mixed_precision: str = "auto"  # auto (bf16/fp16 autocast on CUDA only) | no | bf16 | fp16
    num_threads: int | None = None  # torch.set_num_threads on CPU
    log_every: int = 10

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = "training") -> TrainingConfig:
        """Validated settings; a wrong key or value raises `ConfigError` naming `training.<key>`."""
        return super().from_params(params, where)

    def validate(self, where: str = "training") -> None:
        check = Checks(self, where)
        fail, integer, number = check.fail, check.integer, check.number
        integer("max_steps", 1)
        number("max_seconds", 0, optional=True, strict_low=True)
        integer("batch_size", 1)
        integer("grad_accum", 1)
        number("lr", 0, strict_low=True)
        number("weight_decay", 0)
        number("warmup_ratio", 0, 1)
        number("max_grad_norm", 0, optional=True)
        integer("eval_every", 1)
        integer("early_stop_patience", 1, optional=True)
        integer("checkpoint_every", 1, optional=True)
        integer("seed", 0)
        integer("num_threads", 1, optional=True)
        integer("log_every", 1)
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, (str, os.PathLike)):
            fail("checkpoint_dir", "allowed: a directory path or null")
        if self.mixed_precision not in MIXED_PRECISION:
            fail("mixed_precision", f"allowed: {list(MIXED_PRECISION)}")
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


def _autocast_dtype(config: TrainingConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or config.mixed_precision == "no":
        return None
    if config.mixed_precision == "fp16":
        return torch.float16
    if config.mixed_precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


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


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
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
    started = time.perf_counter()
    rank, world_size = distributed_context()
    distributed = world_size > 1
    device = resolve_device(config.device)
    if distributed and device.type == "cuda":  # one GPU per process: the launcher set this one
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type == "cpu" and config.num_threads:
        torch.set_num_threads(config.num_threads)

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    model.to(device)
    optimizer = build_optimizer(model, config)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(
        optimizer, num_warmup_steps=round(config.warmup_ratio * config.max_steps),
        num_training_steps=config.max_steps,
    )
    autocast_dtype = _autocast_dtype(config, device)
    scaler = torch.amp.GradScaler("cuda") if autocast_dtype == torch.float16 else None

    # Training state (all of it goes into checkpoints).
    step, data_epoch, data_index = 0, 0, 0
    rows: list[dict[str, float]] = []
    best_loss, best_step, best_state, bad_validations = math.inf, None, None, 0
    elapsed_before = 0.0
    pending_loss, pending_steps, pending_tokens = 0.0, 0, 0.0

    checkpoint_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    if config.checkpoint_every and checkpoint_dir is None and rank == 0:
        log.warning("%s: checkpoint_every is set but checkpoint_dir is not: no checkpoints", description)
    resume_from = latest_checkpoint(checkpoint_dir)
    if distributed:  # every rank resumes from the checkpoint rank 0 sees (a shared directory)
        chosen = [str(resume_from) if resume_from else None]
        torch.distributed.broadcast_object_list(chosen, src=0)
        resume_from = Path(chosen[0]) if chosen[0] else None
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        step, data_epoch, data_index = state["step"], state["epoch"], state["index"]
        rows = [dict(zip(HISTORY_COLUMNS, values)) for values in state["history"]]
        best_loss, best_step = state["best_loss"], state["best_step"]
        best_state, bad_validations = state["best_state"], state["bad_validations"]
        elapsed_before = state["seconds"]
        pending_loss, pending_steps, pending_tokens = state["pending"]
        if rank == 0:
            log.info("%s: resumed from %s (step %d)", description, resume_from, step)

    start_step = step
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
            "model": _cpu_state(model), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else {},
            "rng": rng_state(), "step": step, "epoch": cursor.epoch, "index": cursor.index,
            "history": [[float(row[c]) for c in HISTORY_COLUMNS] for row in rows],
            "best_loss": float(best_loss), "best_step": best_step, "best_state": best_state,
            "bad_validations": bad_validations, "seconds": float(elapsed_before + time.perf_counter() - started),
            "pending": [float(pending_loss), int(pending_steps), float(pending_tokens)],
        }

    def run_validation() -> float:
        value = torch.zeros(1, dtype=torch.float64, device=device)
        if rank == 0:
            model.eval()
            with torch.no_grad(), torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype \
                    else nullcontext():
                value[0] = float(validate(model))
            model.train()
        if distributed:
            torch.distributed.broadcast(value, src=0)
        return float(value[0])

    stop_reason = "max_steps"
    if validate is not None and config.early_stop_patience and bad_validations >= config.early_stop_patience:
        stop_reason = "early_stop"
    bar = tqdm(total=config.max_steps, initial=step, desc=description, unit="step",
               disable=not progress or rank != 0, dynamic_ncols=True, leave=False)
    row_started = time.perf_counter()
    recent: deque[tuple[float, float]] = deque(maxlen=20)  # (seconds, tokens) of recent steps
    try:
        while step < config.max_steps and stop_reason != "early_stop":
            step_started = time.perf_counter()
            positions = cursor.take(config.grad_accum * world_size)[rank::world_size]
            optimizer.zero_grad(set_to_none=True)
            loss_sum = torch.zeros(2, dtype=torch.float64, device=device)  # loss, tokens
            for micro, (epoch, index) in enumerate(positions):
                batch = _to_device(batches.batch(epoch, index), device)
                torch.manual_seed(micro_batch_seed(config.seed, epoch, index))
                sync = micro == len(positions) - 1
                with (forward_model.no_sync() if distributed and not sync else nullcontext()):
                    with torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext():
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
            step += 1

            over_time = config.max_seconds is not None and time.perf_counter() - started > config.max_seconds
            totals = torch.cat([loss_sum, torch.tensor([float(over_time)], dtype=torch.float64, device=device)])
            if distributed:
                torch.distributed.all_reduce(totals)
            step_loss = float(totals[0]) / (config.grad_accum * world_size)
            if not math.isfinite(step_loss):
                raise FloatingPointError(f"{description}: the loss is {step_loss} at step {step}")
            pending_loss, pending_steps, pending_tokens = (pending_loss + step_loss, pending_steps + 1,
                                                           pending_tokens + float(totals[1]))
            over_time = float(totals[2]) > 0

            last = step >= config.max_steps or over_time
            val_loss = math.nan
            if validate is not None and (step % config.eval_every == 0 or last):
                val_loss = run_validation()
                if val_loss < best_loss:
                    best_loss, best_step, bad_validations = val_loss, step, 0
                    best_state = _cpu_state(model)
                else:
                    bad_validations += 1
                if config.early_stop_patience and bad_validations >= config.early_stop_patience:
                    stop_reason = "early_stop"
            if step % config.log_every == 0 or last or not math.isnan(val_loss) or stop_reason == "early_stop":
                now = time.perf_counter()
                rows.append({
                    "step": step, "loss": pending_loss / pending_steps, "lr": lr,
                    "tokens_per_second": pending_tokens / max(now - row_started, 1e-9),
                    "val_loss": val_loss, "seconds": elapsed_before + now - started,
                })
                pending_loss, pending_steps, pending_tokens, row_started = 0.0, 0, 0.0, now

            recent.append((time.perf_counter() - step_started, float(totals[1])))
            recent_seconds = sum(seconds for seconds, _ in recent)
            eta = (config.max_steps - step) * recent_seconds / len(recent)
            if config.max_seconds is not None:
                eta = min(eta, config.max_seconds - (time.perf_counter() - started))
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}",
                            tok_s=f"{sum(tokens for _, tokens in recent) / max(recent_seconds, 1e-9):,.0f}",
                            eta=_format_eta(eta), refresh=False)

            if (checkpoint_dir is not None and config.checkpoint_every and step % config.checkpoint_every == 0
                    and rank == 0):
                write_checkpoint(checkpoint_dir, step, checkpoint_state())
            if over_time and stop_reason != "early_stop" and step < config.max_steps:
                stop_reason = "max_seconds"
                break
    finally:
        bar.close()
    written = config.checkpoint_every and step % config.checkpoint_every == 0
    if checkpoint_dir is not None and rank == 0 and step > start_step and not written:
        write_checkpoint(checkpoint_dir, step, checkpoint_state())  # the end state: a rerun resumes here
    if distributed:
        torch.distributed.barrier()

    if validate is not None and best_state is not None:
        model.load_state_dict(best_state)
    seconds = elapsed_before + time.perf_counter() - started
    history = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    history["step"] = history["step"].astype(int)
    if rank == 0:
        log.info("%s: %d steps, stop: %s, %.1f s%s", description, step, stop_reason, seconds,
                 f", best validation loss {best_loss:.4f} at step {best_step}" if best_step else "")
    return TrainingResult(history=history, best_step=best_step, stopped_early=stop_reason == "early_stop",
                          stop_reason=stop_reason, seconds=seconds)
