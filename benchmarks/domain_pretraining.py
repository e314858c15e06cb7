"""Domain-adaptive pretraining: MiniLM-L6 further pretrained on one domain's unlabelled text,
saved as a backbone directory for `finance_sentiment_model.py --backbone` or `--learner`.

FinBERT's recipe in small (BERT further pretrained on financial text before the PhraseBank fit;
Gururangan et al. 2020 call it DAPT), and CPFT's first stage for intents (masked LM plus a
contrastive loss on unlabelled utterances). The objectives and settings are `pretraining:` of
conf/base (masked LM + SimCSE), with `--steps`, `--lr` and `--batch-size` replacing its quick
budget. The texts of each `--domain`:

- finance: the unlabelled pool's finance sources (PhraseBank and tweets train / validation
  texts, the Guardian and CNBC headlines) plus the StockEmotions posts dated before `--cutoff`,
  so that no test sentence and no post of the surge check's held-back dates is seen;
- intent: the pool's dialogue-log utterances (SGD) only, so that a Banking77 evaluation is of
  an encoder that never saw a Banking77 text.

Needs `kedro run --pipeline ingestion` and `--pipeline features`.

    python benchmarks/domain_pretraining.py --domain finance --steps 1250 --save /tmp/fin_dapt
    python benchmarks/finance_sentiment_model.py --epochs 2 --backbone /tmp/fin_dapt
    python benchmarks/domain_pretraining.py --domain intent --steps 800 --save /tmp/intent_dapt
    python benchmarks/contrastive_step.py --learner /tmp/intent_dapt --domains customer_intent
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
POOL_SOURCES = {"finance": ("finance_sentiment", "finance_tweets", "stream:guardian", "stream:cnbc"),
                "intent": ("dialogue_logs",)}


def domain_texts(domain: str, cutoff: str) -> list[str]:
    """The pool's texts of `domain`'s sources (for finance, with the StockEmotions posts dated
    before `cutoff`), each once (`fastadapt.tasks.pool.unlabelled_pool`)."""
    from fastadapt.tasks.pool import unlabelled_pool

    data = ROOT / "data"
    pool = pd.read_parquet(data / "04_feature" / "unlabelled_pool.parquet")
    sources = {"pool": pool.loc[pool["source"].isin(POOL_SOURCES[domain]), "text"].tolist()}
    if domain == "finance":
        stream = pd.read_parquet(data / "03_primary" / "news_stream.parquet")
        posts = stream[(stream["source"] == "stockemotions") & (stream["published_at"] < cutoff)]
        sources["stockemotions"] = posts["headline"].tolist()
    return unlabelled_pool(sources)["text"].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", choices=sorted(POOL_SOURCES), default="finance")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cutoff", default="2020-09-01")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, metavar="DIR", required=True, help="the backbone directory to write")
    args = parser.parse_args()

    from fastadapt.pretraining import PretrainingConfig, pretrain

    torch.set_num_threads(args.threads)
    texts = domain_texts(args.domain, args.cutoff)
    params = yaml.safe_load((ROOT / "conf" / "base" / "parameters_pretraining.yml").read_text())["pretraining"]
    params = {**params, "backbone": "minilm-l6", "max_texts": None,
              "training": {**params["training"], "max_steps": args.steps, "max_seconds": None, "lr": args.lr,
                           "batch_size": args.batch_size, "eval_every": max(args.steps // 10, 1),
                           "num_threads": args.threads, "seed": args.seed, "log_every": 50}}
    config = PretrainingConfig.from_params(params)
    print(f"{len(texts)} {args.domain} texts; objectives {config.active_objectives}, {args.steps} steps of {args.batch_size}")
    cpu, wall = time.process_time(), time.perf_counter()
    output = pretrain(texts, config)
    output.backbone.save_directory(args.save)
    history = output.result.history
    print(json.dumps({"texts": len(texts), "steps": int(history["step"].max()), "stop": output.result.stop_reason,
                      "cpu_seconds": round(time.process_time() - cpu, 1),
                      "wall_seconds": round(time.perf_counter() - wall, 1),
                      "first_loss": float(history["loss"].iloc[0]), "last_loss": float(history["loss"].iloc[-1]),
                      "val_loss": history["val_loss"].dropna().round(4).tolist()}, indent=1))


if __name__ == "__main__":
    main()
