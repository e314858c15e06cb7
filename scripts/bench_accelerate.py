"""Throughput and exactness of `train_model`'s hand-written step against the same step through
Hugging Face `accelerate` (device placement, autocast, backward, clipping, optimiser step).

    PYTHONPATH=src python scripts/bench_accelerate.py --steps 40 --repeats 3

A tiny BERT masked-LM (2 layers, width 128, 64 tokens, batch 16, dropout 0.1) on one CPU thread.
Both loops draw the same micro-batches and reseed dropout from (seed, epoch, index) as
`train_model` does; the script prints non-padding tokens per wall-clock second and per CPU second
of this process (`time.process_time`: less sensitive to other jobs on a shared machine), medians
of the repeats, and whether the final weights are bit-identical to `train_model`'s. The figures are quoted in the
docstring of `fastadapt.models.training`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import BertConfig, BertForMaskedLM, get_linear_schedule_with_warmup

from fastadapt.models.training import (
    TrainingConfig,
    build_optimizer,
    micro_batch_seed,
    train_model,
)

VOCAB, LENGTH, BATCH = 1000, 64, 16


class Batches:
    """Random token rows with ragged lengths and 15 % masked labels; a function of (epoch, index)."""

    def num_batches(self, epoch: int) -> int:
        return 50

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(1000 * epoch + index)
        ids = torch.randint(5, VOCAB, (BATCH, LENGTH), generator=generator)
        lengths = torch.randint(LENGTH // 2, LENGTH + 1, (BATCH,), generator=generator)
        mask = (torch.arange(LENGTH)[None, :] < lengths[:, None]).long()
        chosen = (torch.rand(BATCH, LENGTH, generator=generator) < 0.15) & mask.bool()
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        return {"input_ids": torch.where(chosen, torch.full_like(ids, 4), ids) * mask, "attention_mask": mask,
                "labels": labels}


def model() -> BertForMaskedLM:
    torch.manual_seed(0)
    return BertForMaskedLM(BertConfig(vocab_size=VOCAB, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=256, max_position_embeddings=LENGTH,
                                      hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1))


def mlm_loss(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return net(**batch).loss


def run_fastadapt(config: TrainingConfig) -> tuple[tuple[float, float], dict]:
    net = model()
    started, cpu_started = time.perf_counter(), time.process_time()
    train_model(net, mlm_loss, Batches(), config, progress=False)
    speeds = (_tokens(config) / (time.perf_counter() - started), _tokens(config) / (time.process_time() - cpu_started))
    return speeds, {k: v.detach().clone() for k, v in net.state_dict().items()}


def run_accelerate(config: TrainingConfig, mixed_precision: str) -> tuple[tuple[float, float], dict]:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)  # one Accelerator per process otherwise: see the docstring
    accelerator = Accelerator(cpu=True, mixed_precision=mixed_precision)
    net = model()
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(config.seed)
    optimizer = build_optimizer(net, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * config.max_steps),
                                                config.max_steps)
    net, optimizer = accelerator.prepare(net, optimizer)
    net.train()
    batches, position = Batches(), 0
    for _ in range(config.max_steps):
        optimizer.zero_grad(set_to_none=True)
        for _ in range(config.grad_accum):
            epoch, index = divmod(position, batches.num_batches(0))
            position += 1
            batch = {k: v.to(accelerator.device) for k, v in batches.batch(epoch, index).items()}
            torch.manual_seed(micro_batch_seed(config.seed, epoch, index))
            with accelerator.autocast():
                loss = mlm_loss(net, batch)
            accelerator.backward(loss.float() / config.grad_accum)
        accelerator.clip_grad_norm_(net.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
    speeds = (_tokens(config) / (time.perf_counter() - started), _tokens(config) / (time.process_time() - cpu_started))
    unwrapped = accelerator.unwrap_model(net)
    return speeds, {k: v.detach().clone() for k, v in unwrapped.state_dict().items()}


def _tokens(config: TrainingConfig) -> float:
    batches, total = Batches(), 0
    for position in range(config.max_steps * config.grad_accum):
        epoch, index = divmod(position, batches.num_batches(0))
        total += int(batches.batch(epoch, index)["attention_mask"].sum())
    return float(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = TrainingConfig(max_steps=args.steps, batch_size=BATCH, grad_accum=2, lr=1e-3, device="cpu",
                            mixed_precision="no", num_threads=1, log_every=args.steps, seed=0)
    speeds: dict[str, list[tuple[float, float]]] = {"fastadapt": [], "accelerate": [], "accelerate bf16": []}
    reference, exact = None, {}
    for _ in range(args.repeats):
        speed, weights = run_fastadapt(config)
        speeds["fastadapt"].append(speed)
        reference = weights
        for name, precision in (("accelerate", "no"), ("accelerate bf16", "bf16")):
            speed, other = run_accelerate(config, precision)
            speeds[name].append(speed)
            exact[name] = other.keys() == reference.keys() and all(torch.equal(other[k], reference[k])
                                                                   for k in reference)
    for name, values in speeds.items():
        wall, cpu = [v[0] for v in values], [v[1] for v in values]
        line = (f"{name:16s} {statistics.median(wall):6.0f} tokens/s wall (runs: {', '.join(f'{v:.0f}' for v in wall)})"
                f", {statistics.median(cpu):6.0f} tokens/CPU-s (runs: {', '.join(f'{v:.0f}' for v in cpu)})")
        print(line + ("" if name == "fastadapt" else f"; weights identical to fastadapt's: {exact[name]}"))


if __name__ == "__main__":
    main()
