"""A learner from supervised multi-task pre-fine-tuning, for `contrastive_step.py --learner DIR/backbone`.

MiniLM-L6 fully fine-tuned (`fastadapt.adapt.adapt`, `finetune_all`) as one classifier over every
(corpus, label) of the labelled text corpora's train splits (data/04_feature/*/splits.parquet),
except the domains of `--exclude` (the left-out fold), at most `--cap` rows per class. Measured
in benchmarks/README.md ("Supervised multi-task pre-fine-tuning, tried"). Needs `kedro run
--pipeline ingestion` and `--pipeline features`.

    python benchmarks/multitask_prefinetune.py --exclude customer_intent --save /tmp/pft_b77
    python benchmarks/contrastive_step.py --learner /tmp/pft_b77/backbone --domains customer_intent
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exclude", nargs="+", default=[], help="text domains (folders of data/04_feature) left out")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--cap", type=int, default=100, help="at most this many train rows per class")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save", type=Path, required=True, metavar="DIR")
    args = parser.parse_args()

    from fastadapt.adapt import adapt

    torch.set_num_threads(args.threads)
    frames = []
    for path in sorted((ROOT / "data" / "04_feature").glob("*/splits.parquet")):
        name = path.parent.name
        if name in args.exclude or name == "ner" or name.startswith("crossner"):  # NER tables hold tokens, not texts
            continue
        rows = pd.read_parquet(path, columns=["text", "label", "split"])
        rows = rows[rows["split"] == "train"].sample(frac=1, random_state=args.seed).groupby("label").head(args.cap)
        frames.append(pd.DataFrame({"text": rows["text"].astype(str), "label": name + ":" + rows["label"].astype(str)}))
    if not frames:
        raise SystemExit("no splits under data/04_feature: run `kedro run --pipeline ingestion` and `--pipeline features`")
    train = pd.concat(frames, ignore_index=True).sample(frac=1, random_state=args.seed).reset_index(drop=True)
    print(f"{len(train)} rows, {train['label'].nunique()} classes", flush=True)
    cpu = time.process_time()
    model = adapt("minilm-l6", train, "finetune_all", max_length=64, batch_size=128, dropout=0.1,
                  training={"max_steps": args.steps, "batch_size": 32, "lr": args.lr, "warmup_ratio": 0.1,
                            "weight_decay": 0.01, "num_threads": args.threads, "seed": args.seed})
    print(f"fit cpu {time.process_time() - cpu:.0f} s", flush=True)
    model.save_directory(args.save)


if __name__ == "__main__":
    main()
