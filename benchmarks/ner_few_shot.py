"""Few-shot NER: tag-set extension on CoNLL-2003 (PROTOCOL.md section 4) and domain transfer to
the five CrossNER domains, written to `data/08_reporting/ner_few_shot.md` with a plot.

Stages (each reuses what the previous one saved under `data/06_models/ner_few_shot/` and
`data/07_model_output/ner_few_shot/`, so a stage can be rerun alone):

    python benchmarks/ner_few_shot.py pretrain     # source taggers: all CoNLL types, and one per held-out type
    python benchmarks/ner_few_shot.py evaluate     # every learner on the same greedy draws, rows to parquet
    python benchmarks/ner_few_shot.py report       # the markdown report and the plot
    python benchmarks/ner_few_shot.py all --steps 3000    # conf/full-like budget (a GPU host)

Learners. Source taggers are MiniLM fine-tuned on CoNLL-2003 train (`pretrain_tagger`):
`source_all` on all four types (it never sees CrossNER, so it is the domain-transfer learner for
every CrossNER domain), `source_<T>` with type T relabelled O (tag-set extension fold T; the
leak check of `pretrain_tagger` guarantees T was never seen). On each support draw (greedy, k
mentions per type, `draw_ner_kshot`) we compare, on the same draws:
  nnshot / structshot         on the source tagger's encoder (StructShot: source transitions)
  head_source                 a linear token head on the source encoder's frozen features
  full_source                 fine-tuning the source encoder with a fresh head (finetune_all)
  prototype_minilm / head_minilm   the strategies new_task had before, on plain MiniLM
Test features are computed once per encoder and reused by every frozen-encoder learner and draw.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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
RAW = ROOT / "data" / "01_raw"
MODELS = ROOT / "data" / "06_models" / "ner_few_shot"
OUTPUT = ROOT / "data" / "07_model_output" / "ner_few_shot"
REPORT = ROOT / "data" / "08_reporting" / "ner_few_shot.md"
CONLL_TYPES = ["LOC", "MISC", "ORG", "PER"]
CROSSNER = ["politics", "science", "music", "literature", "ai"]


def read_conll_split(split: str) -> pd.DataFrame:
    from fastadapt.readers.conll import read_conll

    names = {"train": "eng.train", "validation": "eng.testa", "test": "eng.testb"}
    files = {names[split]: (RAW / "conll2003" / names[split]).read_bytes()}
    rows = read_conll(files, {"splits": {split: names[split]}, "scheme": "iob1"}, "conll2003").rows
    return rows.assign(row_id=np.arange(len(rows)))


def read_crossner_split(domain: str, split: str) -> pd.DataFrame:
    from fastadapt.readers.conll import read_conll

    name = f"{split}.conll"
    files = {name: (RAW / f"crossner_{domain}" / name).read_bytes()}
    rows = read_conll(files, {"splits": {split: name}, "scheme": "iob2"}, f"crossner_{domain}").rows
    return rows.assign(row_id=np.arange(len(rows)))


def pretrain(args: argparse.Namespace) -> None:
    """One source tagger per held-out fold (and `all`), saved as model directories."""
    from fastadapt.adaptation import AdaptationConfig
    from fastadapt.adaptation.transfer import pretrain_tagger
    from fastadapt.models.backbones import load_backbone

    train = read_conll_split("train")
    train = train[train["tokens"].map(len) > 0]
    config = AdaptationConfig.from_params({
        "strategy": "full", "max_length": 128, "batch_size": 64, "device": args.device, "dropout": 0.1,
        "training": {"max_steps": args.steps, "batch_size": 16, "lr": args.lr, "warmup_ratio": 0.1,
                     "device": args.device, "num_threads": args.threads, "log_every": 50, "seed": 0}})
    for fold in args.folds:
        target = MODELS / f"source_{fold}"
        if (target / "tagger.json").is_file() and not args.force:
            print(f"{target} exists; skipping (--force to retrain)", flush=True)
            continue
        held_out = [] if fold == "all" else [fold]
        started = time.perf_counter()
        tagger = pretrain_tagger(load_backbone("minilm-l6"), train["tokens"].tolist(), train["tags"].tolist(), config,
                                 held_out=held_out, source="conll2003 train", progress=args.progress)
        partial = target.with_name(target.name + ".partial")
        tagger.save_directory(partial)
        if target.exists():
            shutil.rmtree(target)
        partial.replace(target)  # a killed run never leaves a half-written model directory
        print(f"source_{fold}: {time.perf_counter() - started:.0f} s, {tagger.training}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["pretrain", "evaluate", "report", "all"])
    parser.add_argument("--folds", nargs="+", default=["all", *CONLL_TYPES])
    parser.add_argument("--steps", type=int, default=300, help="source-tagger fine-tuning steps (batch 16)")
    parser.add_argument("--lr", type=float, default=1.0e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.stage in ("pretrain", "all"):
        pretrain(args)


if __name__ == "__main__":
    main()
