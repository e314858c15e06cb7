"""Pretraining throughput: our trainer vs the Hugging Face `Trainer`, in one run.

All train the masked-LM objective of minilm-l6 (all-MiniLM-L6-v2 with a fresh MLM head) on the
same short texts (headlines from the unlabelled pool), with the same batch size, number of steps,
learning rate, fused AdamW (the Trainer's default), clipping and masking probability. The
difference is how batches are made:

- ours: `fastadapt.pretraining` + `fastadapt.models.training.train_model`: length-bucketed
  batches padded to their own longest text, the MLM head computed on the masked tokens only;
- Hugging Face as its docs advise (the peer of PROTOCOL.md section 7): `BertForMaskedLM` +
  `Trainer` + `DataCollatorForLanguageModeling` on unpadded texts, so that the collator pads each
  batch to its own longest text (dynamic padding), with batches of similar lengths
  (`group_by_length`; in transformers 5.x `TrainingArguments(train_sampling_strategy="group_by_length")`);
- Hugging Face padding to max length, shown beside it: the same on texts tokenised with
  `padding="max_length"` (the run_mlm.py recipe with pad_to_max_length).

The figure is non-padding tokens per second, timed from the end of step 1 to the end of the last
step (step 1 pays one-time costs in all). Runs alternate (ours, Trainer dynamic, Trainer
max-length, ours...) so that a machine shared with other work slows all alike; the ratios of the
medians are reported, ours over each Trainer configuration.

    python benchmarks/pretraining_throughput.py            # 2 rounds, 20 steps, batch 32
    python benchmarks/pretraining_throughput.py --steps 10 --rounds 1 --max-length 128
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "data" / "04_feature" / "unlabelled_pool.parquet"


def headlines(n_texts: int, seed: int) -> list[str]:
    """Short texts: the news-stream headlines of the unlabelled pool (a seeded sample)."""
    if not POOL.is_file():
        sys.exit(f"{POOL} is missing: run `kedro run --pipeline features` first")
    pool = pd.read_parquet(POOL)
    texts = pool.loc[pool["source"].isin(["stream:cnbc", "stream:guardian"]), "text"].tolist()
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.choice(len(texts), min(n_texts, len(texts)), replace=False)]


class CountingBatches:
    """Our batch source, counting the non-padding tokens of each batch it hands out."""

    def __init__(self, batches) -> None:
        self.batches, self.tokens, self.positions = batches, [], []

    def num_batches(self, epoch: int) -> int:
        return self.batches.num_batches(epoch)

    def batch(self, epoch: int, index: int):
        batch = self.batches.batch(epoch, index)
        self.tokens.append(int(batch["attention_mask"].sum()))
        self.positions.append(int(batch["attention_mask"].numel()))
        return batch


def run_ours(texts: list[str], args) -> dict:
    from fastadapt.models.backbones import load_backbone
    from fastadapt.models.training import train_model
    from fastadapt.pretraining import PretrainingConfig, PretrainingModel, build_batches, pretraining_loss

    config = PretrainingConfig.from_params({
        "backbone": "minilm-l6", "objectives": {"mlm": 1.0}, "mlm_probability": 0.15,
        "max_length": args.max_length, "validation_fraction": 0.0,
        "training": {"max_steps": args.steps, "batch_size": args.batch_size, "lr": 5e-5, "warmup_ratio": 0.0,
                     "weight_decay": 0.01, "max_grad_norm": 1.0, "log_every": 1, "seed": args.seed,
                     "device": args.device, "mixed_precision": "auto"},
    })
    backbone = load_backbone("minilm-l6")
    torch.manual_seed(args.seed)
    model = PretrainingModel(backbone.model, config.objectives)
    train, _ = build_batches(backbone.tokenizer, texts, config)
    counting = CountingBatches(train)
    result = train_model(model, pretraining_loss, counting, config.training, progress=False,
                         description="ours")
    seconds = result.history["seconds"].to_numpy()
    tokens = counting.tokens[1:args.steps]
    return {"tokens_per_second": sum(tokens) / (seconds[-1] - seconds[0]),
            "positions_per_token": sum(counting.positions[1:args.steps]) / sum(tokens),
            "final_loss": float(result.history["loss"].iloc[-1])}


# The Trainer configurations: the one its docs advise, and padding every text to max_length.
HF_DYNAMIC, HF_MAX_LENGTH = "dynamic padding, group_by_length", "padding=max_length"


def run_hugging_face(texts: list[str], args, configuration: str) -> dict:
    from transformers import (
        AutoTokenizer,
        BertForMaskedLM,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from fastadapt.models.backbones import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    dynamic = configuration == HF_DYNAMIC  # else padding to max length
    encoded = tokenizer(texts, truncation=True, max_length=args.max_length,
                        padding=False if dynamic else "max_length")
    dataset = [{"input_ids": ids, "attention_mask": mask}
               for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"])]
    torch.manual_seed(args.seed)
    model = BertForMaskedLM.from_pretrained(minilm_path(), local_files_only=True)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=0.15, seed=args.seed)
    tokens: list[int] = []
    positions: list[int] = []

    def counting_collator(features):
        batch = collator(features)
        tokens.append(int(batch["attention_mask"].sum()))
        positions.append(int(batch["attention_mask"].numel()))
        return batch

    stamps: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, *_, **__):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    cuda = args.device != "cpu" and torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = TrainingArguments(
            output_dir=output_dir, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
            learning_rate=5e-5, warmup_steps=0, weight_decay=0.01, max_grad_norm=1.0, optim="adamw_torch_fused",
            lr_scheduler_type="linear", logging_strategy="no", save_strategy="no", eval_strategy="no",
            report_to="none", disable_tqdm=True, seed=args.seed, dataloader_num_workers=0,
            use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(),
            train_sampling_strategy="group_by_length" if dynamic else "random",
        )
        # The tokenizer as processing_class: the collator pads with it, the length sampler reads
        # its model input name.
        trainer = Trainer(model=model, args=training_args, train_dataset=dataset, processing_class=tokenizer,
                          data_collator=counting_collator, callbacks=[StepClock()])
        output = trainer.train()
    return {"tokens_per_second": sum(tokens[1:args.steps]) / (stamps[args.steps - 1] - stamps[0]),
            "positions_per_token": sum(positions[1:args.steps]) / sum(tokens[1:args.steps]),
            "final_loss": float(output.training_loss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="headlines sampled from the pool")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64,
                        help="truncation for all; the max-length Trainer pads to it")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each trainer")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()

    texts = headlines(args.texts, args.seed)
    from fastadapt.models.backbones import load_backbone

    lengths = [len(ids) for ids in load_backbone("minilm-l6").tokenizer(texts, truncation=True,
                                                                         max_length=args.max_length)["input_ids"]]
    device = "cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu"
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else "")
          + (f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""))
    print(f"data: {len(texts)} headlines, {np.mean(lengths):.1f} tokens on average (max {max(lengths)}), "
          f"max_length {args.max_length}, batch {args.batch_size}, {args.steps} steps, masked-LM, minilm-l6")
    peers = (HF_DYNAMIC, HF_MAX_LENGTH)
    ours, theirs = [], {peer: [] for peer in peers}
    for round_ in range(args.rounds):
        ours.append(run_ours(texts, args))
        for peer in peers:
            theirs[peer].append(run_hugging_face(texts, args, peer))
        speed = ours[-1]["tokens_per_second"]
        print(f"round {round_ + 1}: ours {speed:,.0f} tok/s; "
              + "; ".join(f"Hugging Face Trainer ({peer}) {runs[-1]['tokens_per_second']:,.0f} tok/s, ratio "
                          f"{speed / runs[-1]['tokens_per_second']:.2f}x" for peer, runs in theirs.items()), flush=True)

    def median(runs: list[dict], key: str = "tokens_per_second") -> float:
        return statistics.median(run[key] for run in runs)

    ours_median = median(ours)
    print(f"non-padding tokens/s (median of {args.rounds}), and positions computed per non-padding token:")
    print(f"  ours: {ours_median:,.0f} tok/s, {median(ours, 'positions_per_token'):.2f} positions/token")
    for peer, runs in theirs.items():
        print(f"  Hugging Face Trainer ({peer}): {median(runs):,.0f} tok/s, "
              f"{median(runs, 'positions_per_token'):.2f} positions/token; ratio ours / it: "
              f"{ours_median / median(runs):.2f}x")

if __name__ == "__main__":
    main()
