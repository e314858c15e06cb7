"""Meta-test on the fixed PROTOCOL.md episodes, and mean accuracy with its 95 % interval.

`evaluate_episodes(adapt_fn, episodes_table, rows)` runs any adapter, `adapt_fn(support_texts,
support_labels) -> TextClassifier`, over the episodes table the features pipeline writes
(columns setting, split, episode, label, row_id, role), so every method meets the same episodes
and differences are paired. The adaptation time of each episode is measured around `adapt_fn`
alone; scoring the query set is not part of it. `select_episodes`, `kshot_draws` and
`sampled_test_rows` choose what a meta-test or a learning curve scores.

    protonet = ProtoNet(MetaLearner(load_backbone("minilm-l6"), head="prototype"))
    table = episodes[(episodes.split == 1) & (episodes.setting == "5way_5shot")]
    results = evaluate_episodes(protonet.adapt, table, rows)
    episode_summary(results.assign(method="protonet"))   # accuracy and ci95 per split and mean
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fastadapt.adapt import adapt
from fastadapt.config import ConfigError
from fastadapt.evaluation.metrics import mean_confidence_interval
from fastadapt.evaluation.paired import pooled_mean
from fastadapt.meta.plan import EvaluationSettings
from fastadapt.models.predictor import TextClassifier
from fastadapt.tasks._tables import require_columns
from fastadapt.tasks.episodes import EPISODE_COLUMNS

RESULT_COLUMNS = ["setting", "split", "episode", "accuracy", "adaptation_seconds"]
AdaptFn = Callable[[Sequence[str], Sequence[Any]], TextClassifier]


def select_episodes(episodes: pd.DataFrame, split: str, settings: EvaluationSettings,
                    where: str = "meta_training") -> pd.DataFrame:
    """The episodes of class split `split` that `settings` asks for (its settings, the first
    `max_episodes` of each); `ConfigError` when the table lacks the split or a setting."""
    table = episodes[episodes["split"] == int(split)]
    if table.empty:
        raise ConfigError(f"{where}.class_splits has split {split}, but class_split_episodes has no episodes of it "
                          f"(found splits {sorted(episodes['split'].unique().tolist())}); rerun the features pipeline")
    if settings.settings is not None:
        unknown = sorted(set(settings.settings) - set(table["setting"]))
        if unknown:
            raise ConfigError(f"{where}.evaluation.settings names {unknown}; the episodes have "
                              f"{sorted(set(table['setting']))}")
        table = table[table["setting"].isin(settings.settings)]
    if settings.max_episodes is not None:
        table = table[table["episode"] < settings.max_episodes]
    return table


def kshot_draws(kshot_sets: pd.DataFrame, ks: Sequence[int] | None, seeds: Sequence[int] | None,
                where: str) -> list[tuple[int, int, list[int]]]:
    """(k, seed, row ids) of the k-shot sets with k in `ks` and seed in `seeds` (None: all), sorted;
    `ConfigError` naming `where` when a requested draw is missing or none is left."""
    available = {(int(k), int(s)): group["row_id"].astype(int).tolist()
                 for (k, s), group in kshot_sets.groupby(["k", "seed"], sort=True)}
    chosen = [(k, s, ids) for (k, s), ids in available.items()
              if (ks is None or k in ks) and (seeds is None or s in seeds)]
    missing = [(k, s) for k in (ks or []) for s in (seeds or []) if (k, s) not in available]
    if missing or not chosen:
        raise ConfigError(f"{where} asks for (k, seed) {missing[:5] or f'with k in {ks} and seed in {seeds}'} that "
                          f"<domain>.kshot_sets lacks; available: {sorted(available)[:10]}... (kshot.ks / kshot.seeds "
                          f"of the features pipeline)")
    return sorted(chosen)


def sampled_test_rows(splits: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """The test split in row-id order, or a fixed random sample of `max_rows` of it (`seed`)."""
    test = splits[splits["split"] == "test"].sort_values("row_id")
    if max_rows is not None and len(test) > max_rows:
        keep = np.random.default_rng(seed).choice(len(test), max_rows, replace=False)
        test = test.iloc[np.sort(keep)]
    return test


def strategy_adapter(learner: Any, strategy: str, **options: Any) -> AdaptFn:
    """An `AdaptFn` that adapts `learner` with a `fastadapt.adapt` strategy (options passed on)."""
    def adapt_fn(texts: Sequence[str], labels: Sequence[Any]) -> TextClassifier:
        return adapt(learner, pd.DataFrame({"text": list(texts), "label": list(labels)}), strategy, **options)
    return adapt_fn


def evaluate_episodes(
    adapt_fn: AdaptFn,
    episodes_table: pd.DataFrame,
    rows: pd.DataFrame,
    progress: bool = True,
) -> pd.DataFrame:
    """Accuracy on the query rows of each episode after adapting on its support rows.

    `rows` maps row_id to text (columns row_id, text; every row the table names). One result
    row per (setting, split, episode), in that sorted order.
    """
    require_columns(episodes_table, EPISODE_COLUMNS, "evaluate_episodes")
    require_columns(rows, ["row_id", "text"], "evaluate_episodes")
    roles = set(episodes_table["role"].unique())
    if not roles <= {"support", "query"}:
        raise ValueError(f"evaluate_episodes: role must be support or query; found {sorted(roles)}")
    text_by_id = pd.Series(rows["text"].astype(str).to_numpy(), index=rows["row_id"].to_numpy())
    if not text_by_id.index.is_unique:
        raise ValueError("evaluate_episodes: rows has repeated row_id values")
    missing = sorted(set(episodes_table["row_id"]) - set(text_by_id.index))
    if missing:
        raise ValueError(f"evaluate_episodes: {len(missing)} row ids of the episodes are not in rows, "
                         f"e.g. {missing[:5]}")

    records = []
    groups = episodes_table.groupby(["setting", "split", "episode"], sort=True)
    for (setting, split, episode), table in tqdm(groups, desc="meta-test episodes", unit="episode",
                                                 disable=not progress, leave=False):
        support = table[table["role"] == "support"]
        query = table[table["role"] == "query"]
        if support.empty or query.empty:
            raise ValueError(f"episode {episode} of {setting} on split {split} lacks a support or query set")
        leaked = set(support["row_id"]) & set(query["row_id"])
        if leaked:
            raise ValueError(f"episode {episode} of {setting} on split {split}: rows {sorted(leaked)[:5]} "
                             f"are both support and query")
        support_texts = text_by_id.loc[support["row_id"]].tolist()
        started = time.perf_counter()
        classifier = adapt_fn(support_texts, support["label"].astype(str).tolist())
        seconds = time.perf_counter() - started
        predicted = np.asarray(classifier.predict(text_by_id.loc[query["row_id"]].tolist()), dtype=object)
        accuracy = float(np.mean(predicted.astype(str) == query["label"].astype(str).to_numpy()))
        records.append((str(setting), int(split), int(episode), accuracy, seconds))
    return pd.DataFrame.from_records(records, columns=RESULT_COLUMNS).astype(
        {"setting": str, "split": "int64", "episode": "int64", "accuracy": "float64",
         "adaptation_seconds": "float64"}
    )


def episode_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy and 95 % CI per method x setting x split (PROTOCOL.md section 3), and the
    mean over splits (split `mean`: `evaluation.paired.pooled_mean` of the split means, splits
    independent).

    `results`: `evaluate_episodes` rows with a `method` column. Columns method, setting, split
    (two digits, or `mean`), episodes, accuracy, ci95, adaptation_seconds (mean per episode).
    """
    require_columns(results, ["method", "setting", "split", "accuracy", "adaptation_seconds"], "episode_summary")
    rows = []
    for (method, setting, split), group in results.groupby(["method", "setting", "split"], sort=True):
        mean, half = mean_confidence_interval(group["accuracy"].to_numpy())
        rows.append({"method": method, "setting": setting, "split": f"{int(split):02d}", "episodes": len(group),
                     "accuracy": mean, "ci95": half, "adaptation_seconds": float(group["adaptation_seconds"].mean())})
    table = pd.DataFrame(rows)
    means = []
    for (method, setting), group in table.groupby(["method", "setting"], sort=True):
        accuracy, half = pooled_mean(group["accuracy"], group["ci95"])
        means.append({"method": method, "setting": setting, "split": "mean", "episodes": int(group["episodes"].sum()),
                      "accuracy": accuracy, "ci95": half,
                      "adaptation_seconds": float(group["adaptation_seconds"].mean())})
    return pd.concat([table, pd.DataFrame(means)], ignore_index=True)
