"""How good must item labels be for the StockEmotions surge check (PROTOCOL.md section 6)?

The check compares the surge days the monitoring test finds on a model's labels with those it
finds on the gold labels. This benchmark replaces the model by gold labels flipped at random
(bearish <-> not, each post independently, so item accuracy is `a`) and runs the monitoring
node's own check (`check_on_labelled`, conf/base settings: binomial test, FDR, one-day tolerance)
on the scored stream's labelled posts; the row `scored model` is the check of the model that
scored the stream. It tells which item accuracy the check's recall target needs, with the
thresholds untouched. Needs `kedro run --pipeline monitoring` (its scored stream).

    python benchmarks/surge_label_noise.py                       # a in 0.7..1.0, seeds 0-4
    python benchmarks/surge_label_noise.py --accuracies 0.85 0.9 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
STREAM = ROOT / "data" / "07_model_output" / "monitoring" / "scored_stream.parquet"
REPORT = ROOT / "data" / "08_reporting" / "monitoring" / "surge_label_noise.md"


def noise_curve(stream: pd.DataFrame, monitoring: Mapping[str, Any], accuracies: Sequence[float],
                seeds: Sequence[int]) -> pd.DataFrame:
    """One row per accuracy: mean precision, recall and predicted surge days over the seeds, and
    the measured item accuracy (bearish vs not) of the flipped labels."""
    from fastadapt.pipelines.monitoring.nodes import check_on_labelled

    check = monitoring.get("check") or {}
    gold_negative = str(check.get("gold_negative_label", "bearish"))
    negative = str(monitoring.get("scoring", {}).get("negative_label", "negative"))
    gold_column = check.get("gold_label_column", "label")
    labelled = stream[stream[gold_column].notna()] if gold_column in stream else stream.iloc[:0]
    is_negative = (labelled[gold_column].astype(str) == gold_negative).to_numpy()
    rows = []
    for accuracy in accuracies:
        results = []
        for seed in seeds:
            flip = np.random.default_rng(seed).random(len(labelled)) >= accuracy
            predicted = np.where(is_negative ^ flip, negative, "not_" + negative)
            result = check_on_labelled(labelled.assign(predicted=predicted), monitoring)
            results.append((np.nan if result.get("precision") is None else result["precision"],
                            np.nan if result.get("recall") is None else result["recall"],
                            result.get("n_predicted", 0), result.get("n_gold", 0), 1.0 - flip.mean()))
        values = np.asarray(results, dtype=float)
        rows.append({"labels": f"gold, item accuracy {accuracy:.2f}", "item_accuracy": values[:, 4].mean(),
                     "precision": np.nanmean(values[:, 0]) if np.isfinite(values[:, 0]).any() else np.nan,
                     "recall": values[:, 1].mean(), "predicted_days": values[:, 2].mean(),
                     "gold_days": values[:, 3].mean(), "seeds": len(seeds)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stream", type=Path, default=STREAM)
    parser.add_argument("--accuracies", type=float, nargs="+", default=[0.7, 0.8, 0.85, 0.9, 0.95, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args()
    if not args.stream.is_file():
        raise SystemExit(f"{args.stream} does not exist: run `kedro run --pipeline monitoring` first")
    from fastadapt.pipelines.monitoring.nodes import check_on_labelled

    monitoring = yaml.safe_load((ROOT / "conf" / "base" / "parameters_monitoring.yml").read_text())["monitoring"]
    stream = pd.read_parquet(args.stream)
    scored = check_on_labelled(stream, monitoring)
    if scored.get("status") != "checked":
        raise SystemExit(f"no labelled posts in {args.stream}: {scored.get('reason')}")
    source = (monitoring.get("check") or {}).get("source")
    labelled = stream[stream["source"] == source] if source else stream
    curve = noise_curve(labelled, monitoring, args.accuracies, args.seeds)
    agreement = scored["item_agreement"]
    share = agreement["gold_negative_share"]
    model_accuracy = (share * agreement["predicted_negative_given_gold_negative"]
                      + (1 - share) * (1 - agreement["predicted_negative_given_gold_other"]))
    model = {"labels": "scored model", "item_accuracy": model_accuracy, "precision": scored["precision"],
             "recall": scored["recall"], "predicted_days": scored["n_predicted"], "gold_days": scored["n_gold"],
             "seeds": 1}
    table = pd.concat([curve, pd.DataFrame([model])], ignore_index=True)
    lines = [
        "# StockEmotions surge check against item-label accuracy", "",
        f"Posts: {scored['n_items']} ({source}, from {scored['date_from']}); conf/base surge settings "
        f"(binomial test, {monitoring['surge']['correction']}, alpha {monitoring['surge']['alpha']}), "
        f"tolerance {scored['tolerance_days']} day. Gold labels flipped at random (bearish vs not) to the item "
        f"accuracy shown, seeds {args.seeds}. The scored model: bearish recall "
        f"{agreement['predicted_negative_given_gold_negative']:.3f}, negative on "
        f"{agreement['predicted_negative_given_gold_other']:.3f} of the other posts.", "",
        "| labels | item accuracy | precision | recall | predicted days | gold days |", "|---|---:|---:|---:|---:|---:|"]
    for row in table.itertuples():
        fmt = lambda v: "" if pd.isna(v) else f"{v:.2f}"
        lines.append(f"| {row.labels} | {fmt(row.item_accuracy)} | {fmt(row.precision)} | {fmt(row.recall)} | "
                     f"{row.predicted_days:.1f} | {row.gold_days:.0f} |")
    text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(args.output)
    print(text)


if __name__ == "__main__":
    main()
