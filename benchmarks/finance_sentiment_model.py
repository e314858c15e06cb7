"""The finance sentiment model's recipe measured: MiniLM-L6 fully fine-tuned on mixed sources.

The same library calls as the retraining pipeline's neural challenger (`fastadapt.tasks.mixed`
for the explicitly mapped sources, `fastadapt.adapt.adapt(..., "finetune_all")`), on PhraseBank's
train split, the tweets' train split and StockEmotions posts dated before `--cutoff`; then
accuracy on the PhraseBank 50Agree test split (and its AllAgree part), the tweets' test set
(sent_valid), and PROTOCOL.md section 6 (the monitoring node `check_on_labelled`, conf/base
settings) on the StockEmotions posts from `--cutoff` on, which the model never saw. Prints the
fit's CPU and wall seconds. Needs `kedro run --pipeline ingestion` and `--pipeline features`.

    python benchmarks/finance_sentiment_model.py --epochs 1 --lr 1e-4      # ~9 CPU-minutes, 1 thread
    python benchmarks/finance_sentiment_model.py --repeat tweets=0 stockemotions=0   # PhraseBank alone
    python benchmarks/finance_sentiment_model.py --epochs 2 --seed 1 --save /tmp/fin_s1   # keep the model
    python benchmarks/finance_sentiment_model.py --epochs 2 --backbone /tmp/fin_dapt      # after domain_pretraining.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
TWEETS = {"Bearish": "negative", "Bullish": "positive", "Neutral": "neutral"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cutoff", default="2020-09-01")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", nargs="*", default=[], metavar="SOURCE=N",
                        help="each row of SOURCE (phrasebank, tweets, stockemotions) N times (0: leave it out)")
    parser.add_argument("--save", type=Path, metavar="DIR", help="also save the fitted model into DIR")
    parser.add_argument("--backbone", default="minilm-l6",
                        help="the starting encoder: minilm-l6 or a backbone directory (domain_pretraining.py --save)")
    args = parser.parse_args()
    repeat = {}
    for item in args.repeat:
        name, _, times = item.partition("=")
        if name not in ("phrasebank", "tweets", "stockemotions") or not times.isdigit():
            parser.error(f"--repeat {item!r}: expected SOURCE=N with SOURCE phrasebank, tweets or stockemotions")
        repeat[name] = int(times)

    from fastadapt.adapt import adapt
    from fastadapt.monitoring.registry import evaluate_classifier
    from fastadapt.pipelines.monitoring.nodes import check_on_labelled
    from fastadapt.tasks.mixed import mixed_rows, parse_sources

    torch.set_num_threads(args.threads)
    data = ROOT / "data"
    phrasebank = pd.read_parquet(data / "04_feature" / "finance_sentiment" / "splits.parquet")
    tweets = pd.read_parquet(data / "04_feature" / "finance_tweets" / "splits.parquet")
    stream = pd.read_parquet(data / "03_primary" / "news_stream.parquet")
    sources = parse_sources({
        "phrasebank": {"table": "phrasebank", "label_map": {c: c for c in ("negative", "neutral", "positive")}},
        "tweets": {"table": "tweets", "label_map": TWEETS},
        "stockemotions": {"table": "stream", "source": "stockemotions", "text_column": "headline",
                          "label_map": {"bearish": "negative", "bullish": "positive"}, "date_until": args.cutoff},
    }, "finance_sentiment_model")
    train = mixed_rows({"phrasebank": phrasebank, "tweets": tweets, "stream": stream}, sources)
    if repeat:
        times = train["source"].map(repeat).fillna(1).astype(int).to_numpy()
        train = train.loc[train.index.repeat(times)].reset_index(drop=True)
    print(train.groupby(["source", "label"]).size().to_string())
    steps = int(np.ceil(args.epochs * len(train) / args.batch_size))
    training = {"max_steps": steps, "batch_size": args.batch_size, "lr": args.lr, "warmup_ratio": 0.1,
                "weight_decay": 0.01, "num_threads": args.threads, "seed": args.seed}
    cpu, wall = time.process_time(), time.perf_counter()
    model = adapt(args.backbone, train[["text", "label"]], "finetune_all", training=training,
                  max_length=args.max_length, batch_size=128, dropout=0.1)
    result = {"n_train": len(train), "steps": steps, "fit_cpu_seconds": round(time.process_time() - cpu, 1),
              "fit_wall_seconds": round(time.perf_counter() - wall, 1)}
    if args.save:
        model.save_directory(args.save)
    test = phrasebank[phrasebank["split"] == "test"]
    result["phrasebank_50agree_test"] = evaluate_classifier(model, test[["text", "label"]])
    result["phrasebank_allagree_test"] = evaluate_classifier(model, test[test["agreement"] == 100][["text", "label"]])
    tweets_test = tweets[tweets["split"] == "test"].assign(label=lambda t: t["label"].map(TWEETS))
    result["tweets_test"] = evaluate_classifier(model, tweets_test[["text", "label"]])
    later = stream[(stream["source"] == "stockemotions") & (stream["published_at"] >= args.cutoff)]
    later = later.assign(predicted=model.predict(later["headline"].astype(str).tolist()))
    monitoring = yaml.safe_load((ROOT / "conf" / "base" / "parameters_monitoring.yml").read_text())["monitoring"]
    check = check_on_labelled(later, {**monitoring, "check": {**monitoring["check"], "date_from": args.cutoff}})
    result["stockemotions_check"] = {k: v for k, v in check.items() if k not in ("gold_days", "predicted_days")}
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
