"""The meta-learning report: paired episode differences pooled over splits, and its sections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fastadapt.evaluation import meta_report
from fastadapt.meta.evaluate import episode_summary
from fastadapt.meta.plan import MetaTrainingPlan

FROZEN, TFIDF = meta_report.FROZEN, meta_report.TFIDF

SHIFT = {"protonet": 0.10, FROZEN: 0.0, TFIDF: -0.30}


def results(splits=(1, 2), episodes: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for split in splits:
        for setting in ("5way_1shot", "5way_5shot"):
            base = rng.uniform(0.4, 0.6, episodes)
            for method, shift in SHIFT.items():
                run = f"protonet_s{split:02d}" if method == "protonet" else f"baselines_s{split:02d}"
                for episode in range(episodes):
                    rows.append({"run": run, "method": method, "setting": setting, "split": split,
                                 "episode": episode, "accuracy": base[episode] + shift + rng.normal(0, 0.01),
                                 "adaptation_seconds": 0.01, "eval_seconds": 3.0})
    return pd.DataFrame(rows)


def test_episode_differences_pair_the_episodes_and_pool_the_split_means():
    table = results()
    diffs = meta_report.episode_differences(table, ["protonet"], [FROZEN, TFIDF])
    assert list(diffs.columns) == ["method", "baseline", "setting", "split", "episodes", "difference", "ci95", "low",
                                   "high"]
    assert sorted(set(diffs["split"])) == ["01", "02", "mean"]
    one = diffs[(diffs["baseline"] == FROZEN) & (diffs["setting"] == "5way_1shot")].set_index("split")
    part = table[(table["setting"] == "5way_1shot") & (table["split"] == 1)]
    paired = (part[part["method"] == "protonet"]["accuracy"].to_numpy()
              - part[part["method"] == FROZEN]["accuracy"].to_numpy())
    assert one.loc["01", "difference"] == pytest.approx(paired.mean())
    assert one.loc["01", "ci95"] == pytest.approx(1.96 * paired.std(ddof=1) / np.sqrt(20))
    assert one.loc["mean", "difference"] == pytest.approx((one.loc["01", "difference"] + one.loc["02", "difference"]) / 2)
    assert one.loc["mean", "ci95"] == pytest.approx(np.hypot(one.loc["01", "ci95"], one.loc["02", "ci95"]) / 2)
    assert one.loc["mean", "episodes"] == 40
    assert (diffs[diffs["baseline"] == FROZEN]["low"] > 0).all() and (diffs[diffs["baseline"] == TFIDF]["low"] > 0).all()


def test_the_report_gives_the_verdict_the_tables_and_the_limits():
    plan = MetaTrainingPlan.from_params({"class_splits": ["01", "02"], "curves": {"ks": [1, 5]}})
    table = results()
    summary = episode_summary(table)
    diffs = meta_report.episode_differences(table, ["protonet"], [FROZEN, TFIDF])
    runs = pd.DataFrame([{"run": "protonet_s01", "initial_val_accuracy": 0.5, "best_val_accuracy": 0.6, "best_step": 10,
                          "steps": 30, "stop_reason": "max_steps", "seconds": 12.0, "selected": True}])
    curves = pd.DataFrame([{"domain": "acid", "model": model, "k": k, "seed": seed, "accuracy": acc + 0.01 * seed,
                            "macro_f1": acc, "n_test": 50, "adaptation_seconds": 0.1}
                           for model, acc in (("meta_trained", 0.8), ("pretrained", 0.6)) for k in (1, 5)
                           for seed in range(3)])
    report = meta_report.meta_learning_report(plan, runs, table, summary, diffs, curves, 100, "base")
    assert report.startswith("# Meta-learning: does learning to learn help?")
    assert "**Quick configuration.**" in report and "20 test episodes per setting and split" in report
    assert "(features pipeline `episodes.n_episodes: 100`)" in report
    assert "**protonet** against the same encoder without meta-training (frozen prototypes), paired over the same " \
           "episodes: helped in 5way_1shot, 5way_5shot. Largest change: +10." in report
    assert "- 5way_1shot, mean over splits: **helped**, +9.7 points (95 % CI +9.3 to +10.2)." in report
    assert "- acid: helped at k=1 (+20.0), k=5 (+20.0)." in report
    assert "- `protonet_s01`: 0.500 at step 0, best 0.600 at step 10 (30 steps, stop: max_steps, 12 s)" in report
    for section in ("## Verdict", "## Class-split episodes: accuracy with 95 % CI", "### 5way_5shot",
                    "### Paired differences (method − baseline, same episodes)", "## k-shot learning curves per domain",
                    "### acid", "- k=1: meta-trained vs pretrained-only +20.0 points (95 % CI ±0.0, 3 seeds): helped.",
                    "## Wall time", "- meta-test `protonet` (protonet_s02): 3 s for 40 episodes"):
        assert section in report
    assert "## Leave one domain out" not in report
    metrics = meta_report.summary_metrics(summary)
    assert metrics["protonet.5way_1shot.split_mean.accuracy"]["value"] == pytest.approx(
        summary.set_index(["method", "setting", "split"]).loc[("protonet", "5way_1shot", "mean"), "accuracy"])
    assert len(meta_report.episode_figure(summary).axes) == 2


def test_history_metrics_leave_out_the_missing_values():
    history = pd.DataFrame({"step": [0, 1, 2], "loss": [np.nan, 1.0, 0.5], "accuracy": [np.nan, 0.5, 0.6],
                            "val_loss": [1.2, np.nan, 0.9], "val_accuracy": [0.4, np.nan, 0.7]})
    metrics = meta_report.history_metrics(history)
    assert metrics["val_accuracy"] == [{"value": 0.4, "step": 0}, {"value": 0.7, "step": 2}]
    assert [p["step"] for p in metrics["loss"]] == [1, 2]


def test_the_report_and_the_statistics_need_no_torch():
    import subprocess
    import sys

    code = ("import sys, fastadapt.evaluation.meta_report, fastadapt.evaluation.paired, fastadapt.evaluation.lodo; "
            "print('torch' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"
