"""Adaptation speed: seconds to adapt to Banking77 with 10 shots per class, per strategy, and the
test accuracy each reaches.

Every strategy of `fastadapt.adapt.adapt` starts from the same model (the meta-training pipeline's
`meta_learner`, newest version; `--learner minilm-l6` for the plain pretrained encoder) and adapts
on the same support set: the PROTOCOL.md section 2 draw of k=10 examples for each of the 77
classes (`customer_intent.kshot_sets`, seed 0: 770 texts). The figure is `adaptation_seconds`, the
wall time of the fit alone (what `adapt` measures); accuracy is on the Banking77 test split (or a
fixed random sample of `--test-rows` of it), scored after the clock stops.

    python benchmarks/adaptation_speed.py                      # all strategies, CPU, the whole test split
    python benchmarks/adaptation_speed.py --strategies prototype tfidf --test-rows 1000
    python benchmarks/adaptation_speed.py --device cuda --learner minilm-l6

Needs `kedro run` (the features: splits and k-shot sets) and, for the default learner,
`kedro run --pipeline meta_training`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ROOT / "data" / "04_feature" / "customer_intent"
META_LEARNER = ROOT / "data" / "06_models" / "meta_learner"
STRATEGIES = ["prototype", "meta", "finetune_head", "finetune_lora", "finetune_all", "tfidf"]
TFIDF = {"ngram_range": [1, 2], "min_df": 1, "sublinear_tf": True, "C": 10.0, "max_iter": 2000, "seed": 0}


def load_learner(name: str):
    if name != "meta_learner":
        from fastadapt.models.backbones import load_backbone

        return load_backbone(name)
    from kedro.io.core import Version

    from fastadapt.datasets import ModelDirectoryDataset

    if not META_LEARNER.is_dir():
        sys.exit(f"{META_LEARNER} is missing: run `kedro run --pipeline meta_training` (or use --learner minilm-l6)")
    return ModelDirectoryDataset(str(META_LEARNER), version=Version(None, None)).load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--learner", default="meta_learner", help="meta_learner | minilm-l6 | a model directory")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-rows", type=int, default=None, help="a fixed random sample of the test split")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (2 threads on 2 cores shared with another job can be 10x slower)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from fastadapt.adapt import adapt
    from fastadapt.evaluation.metrics import classification_metrics
    from fastadapt.models.predictor import classification_predictions

    for name in ("splits.parquet", "kshot_sets.parquet"):
        if not (FEATURES / name).is_file():
            sys.exit(f"{FEATURES / name} is missing: run `kedro run` (the features pipeline) first")
    splits = pd.read_parquet(FEATURES / "splits.parquet")
    sets = pd.read_parquet(FEATURES / "kshot_sets.parquet")
    ids = sets[(sets["k"] == args.k) & (sets["seed"] == args.seed)]["row_id"].tolist()
    if not ids:
        sys.exit(f"no k={args.k} seed={args.seed} set in {FEATURES / 'kshot_sets.parquet'}")
    support = splits.set_index("row_id").loc[ids, ["text", "label"]].reset_index(drop=True)
    test = splits[splits["split"] == "test"].sort_values("row_id")
    if args.test_rows and len(test) > args.test_rows:
        test = test.iloc[np.sort(np.random.default_rng(0).choice(len(test), args.test_rows, replace=False))]
    learner = load_learner(args.learner)
    if hasattr(learner, "learner"):
        learner.learner.to(torch.device(args.device))
    labels = sorted(splits["label"].unique())
    device = {"device": args.device}
    options = {
        "prototype": {**device, "metric": "cosine"}, "meta": {}, "tfidf": TFIDF,
        "finetune_head": {**device, "training": {"device": args.device, "num_threads": args.threads}},
        "finetune_all": {**device, "max_length": 64, "training": {"device": args.device, "num_threads": args.threads}},
        "finetune_lora": {**device, "max_length": 64, "training": {"device": args.device, "num_threads": args.threads}},
    }
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"device {args.device}, {args.threads} threads")
    print(f"learner: {getattr(learner, 'describe', lambda: args.learner)()}")
    print(f"support: Banking77 k={args.k} per class, seed {args.seed}: {len(support)} texts, "
          f"{support['label'].nunique()} classes; test: {len(test)} rows")
    rows = []
    for strategy in args.strategies:
        started = time.perf_counter()
        predictor = adapt(None if strategy == "tfidf" else learner, support, strategy, **options.get(strategy, {}))
        predictions = classification_predictions(predictor, test)
        scores = classification_metrics(predictions, labels)
        rows.append({"strategy": strategy, "adaptation_seconds": predictor.adaptation_seconds,
                     "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                     "total_seconds": time.perf_counter() - started})
        print(f"  {strategy:14s} adapt {predictor.adaptation_seconds:8.2f} s   accuracy {scores['accuracy']:.4f}   "
              f"macro-F1 {scores['macro_f1']:.4f}", flush=True)
    table = pd.DataFrame(rows)
    print()
    print("| strategy | adaptation seconds | test accuracy | macro-F1 |")
    print("|---|---:|---:|---:|")
    for row in table.itertuples(index=False):
        print(f"| {row.strategy} | {row.adaptation_seconds:.2f} | {row.accuracy:.3f} | {row.macro_f1:.3f} |")


if __name__ == "__main__":
    main()
