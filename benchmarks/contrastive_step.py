"""Does SetFit's contrastive step help our head? The table that chooses its default.

On several text domains (each a task the learner may not have seen: the plain pretrained encoder
by default), the PROTOCOL.md section 2 draws of k per class from the train split are adapted by
`fastadapt.adapt.adapt` with `finetune_head` as `new_task` configures it (`new_task.strategies`),
and with the same plus a `contrastive` block (`fastadapt.adaptation.contrastive`) for each
`--iterations` value and step cap; every arm is scored on the same test rows. Differences are
paired over the draws (arm minus plain head, 95 % t-interval, `fastadapt.evaluation.paired`).

    python benchmarks/contrastive_step.py                                   # 4 domains, k 5 and 10, seeds 0-2
    python benchmarks/contrastive_step.py --domains finance_sentiment --ks 10 --seeds 0 --iterations 20

Writes data/08_reporting/contrastive_step.md and .csv (and prints them). Needs `kedro run`
(the splits of every text domain).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from setfit_peer import Arm, load_learner, run_ours, support_sets  # noqa: E402  (the same draws and scoring)

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_PROJECT_PATH", str(ROOT))
OUTPUT = ROOT / "data" / "08_reporting" / "contrastive_step"
BASE = "finetune_head"


def scored_rows(splits: pd.DataFrame, support: pd.DataFrame, limit: int | None) -> tuple[pd.DataFrame, str]:
    """The rows an arm is scored on, and their split: the test split; else validation (the
    meta-training corpora keep none); else the train rows outside this draw's support (ACID,
    HINT3). At most `limit` of them, a fixed random sample (rng(0))."""
    for split in ("test", "validation"):
        rows = splits[splits["split"] == split]
        if len(rows):
            break
    else:
        split = "train outside the support"
        rows = splits[(splits["split"] == "train") & ~splits["text"].isin(set(support["text"]))]
    rows = rows.sort_values("row_id")
    if limit and len(rows) > limit:
        rows = rows.iloc[np.sort(np.random.default_rng(0).choice(len(rows), limit, replace=False))]
    return rows, split


def arms(head_options: dict, iterations: list[int], max_steps: list[int | None], rates: list[float]) -> list[Arm]:
    # The plain head is `new_task`'s finetune_head without the contrastive step.
    chosen = [Arm(BASE, "finetune_head", {**head_options, "contrastive": None})]
    for count in iterations:
        for cap in max_steps:
            for lr in rates:
                # Always run, whatever the task's size (the default block's limits lifted).
                block = {"num_iterations": count, "lr": lr, "max_steps": cap, "max_classes": None, "min_per_class": None}
                label = f"{BASE} + contrastive R={count}, lr {lr:g}" + (f", {cap} steps" if cap else "")
                chosen.append(Arm(label, "finetune_head", {**head_options, "contrastive": block}))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", nargs="+",
                        default=["customer_intent", "finance_sentiment", "finance_tweets", "dialogue_intent"])
    parser.add_argument("--ks", nargs="+", type=int, default=[5, 10])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--iterations", nargs="+", type=int, default=[5, 20], help="contrastive num_iterations")
    parser.add_argument("--lrs", nargs="+", type=float, default=[2e-5], help="contrastive learning rates")
    parser.add_argument("--max-steps", nargs="+", type=int, default=[0], help="step caps (0: one pass over the pairs)")
    parser.add_argument("--learner", default="minilm-l6")
    parser.add_argument("--test-rows", type=int, default=1000, help="a fixed random sample of each test split")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--env", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from fastadapt.adapt import adapt
    from fastadapt.config import project_parameters
    from fastadapt.evaluation.paired import paired_differences

    strategies = (project_parameters(args.env).get("new_task") or {}).get("strategies") or {}
    chosen = arms(dict(strategies.get(BASE) or {}), args.iterations, [cap or None for cap in args.max_steps], args.lrs)
    learner = load_learner(args.learner)
    rows = []
    started = time.perf_counter()
    for domain in args.domains:
        splits = pd.read_parquet(ROOT / "data" / "04_feature" / domain / "splits.parquet")
        for k in args.ks:
            # Classes with fewer than k train rows cannot be drawn k-shot (ATIS has some): left out.
            counts = splits.loc[splits["split"] == "train", "label"].value_counts()
            kept = splits[splits["label"].isin(counts[counts >= k].index)]
            labels = sorted(set(kept["label"].astype(str)))
            supports = support_sets(kept, k, args.seeds)
            adapt(learner, supports[args.seeds[0]].groupby("label").head(1).head(2), "prototype")  # warm-up
            for seed, support in supports.items():
                test, scored = scored_rows(kept, support, args.test_rows)
                for arm in chosen:
                    scores = run_ours(learner, support, test, labels, arm)
                    rows.append({"domain": domain, "k": k, "seed": seed, "arm": arm.label, "scored_split": scored,
                                 "classes": len(labels), **scores})
                    print(f"{domain:18s} k={k:<3d} seed {seed}  {arm.label:45s} {scores['seconds']:7.2f} s  "
                          f"accuracy {scores['accuracy']:.4f}", flush=True)
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(OUTPUT.with_suffix(".partial.csv"), index=False)  # a crash keeps what ran
    results = pd.DataFrame(rows)
    wide = results.pivot_table(index=["domain", "k", "seed"], columns="arm", values="accuracy")
    diffs = paired_differences(wide, [(arm.label, BASE) for arm in chosen[1:]], by=["domain", "k"], distribution="t")
    summary = results.groupby(["domain", "k", "arm"], sort=False).agg(
        accuracy=("accuracy", "mean"), seconds=("seconds", "mean"), texts=("seconds", "size")).reset_index()
    lines = [
        "# The contrastive step: head with and without it", "",
        f"Learner `{args.learner}`; `new_task.strategies.{BASE}` of env `{args.env or 'base'}`; k-shot draws "
        f"of seeds {args.seeds}; {args.test_rows or 'all'} test rows per domain (fixed sample, rng(0)); "
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} threads; "
        f"{time.perf_counter() - started:.0f} s in all.", "",
        "| domain | k | arm | accuracy (mean over seeds) | adaptation seconds |", "|---|---:|---|---:|---:|",
        *[f"| {r.domain} | {r.k} | {r.arm} | {r.accuracy:.3f} | {r.seconds:.1f} |" for r in summary.itertuples()],
        "", "Paired differences against the plain head (points, 95 % t-interval over seeds):", "",
        "| domain | k | arm | difference | interval |", "|---|---:|---|---:|---|",
        *[f"| {r.domain} | {r.k} | {r.arm} | {100 * r.difference:+.1f} | {100 * r.low:+.1f} to {100 * r.high:+.1f} |"
          for r in diffs.itertuples()],
    ]
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(OUTPUT.with_suffix(".csv"), index=False)
    OUTPUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
