"""Meta-test on the fixed PROTOCOL.md episodes, and mean accuracy with its 95 % interval.

`evaluate_episodes(adapt_fn, episodes_table, rows)` runs any adapter, `adapt_fn(support_texts,
support_labels) -> TextClassifier`, over the episodes table the features pipeline writes
(columns setting, split, episode, label, row_id, role), so every method meets the same episodes
and differences are paired. The adaptation time of each episode is measured around `adapt_fn`
alone; scoring the query set is not part of it.

    protonet = ProtoNet(MetaLearner(load_backbone("minilm-l6"), head="prototype"))
    table = episodes[(episodes.split == 1) & (episodes.setting == "5way_5shot")]
    results = evaluate_episodes(protonet.adapt, table, rows)
    summarise_with_ci(results)   # setting, split, episodes, accuracy, ci95, low, high, seconds
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fastadapt.models.predictor import TextClassifier
from fastadapt.tasks._tables import require_columns
from fastadapt.tasks.episodes import EPISODE_COLUMNS

RESULT_COLUMNS = ["setting", "split", "episode", "accuracy", "adaptation_seconds"]
AdaptFn = Callable[[Sequence[str], Sequence[Any]], TextClassifier]


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


def summarise_with_ci(results: pd.DataFrame, by: Sequence[str] = ("setting", "split")) -> pd.DataFrame:
    """Mean accuracy per group with the 95 % interval 1.96 * sd / sqrt(n) (PROTOCOL.md section 3).

    sd is the sample standard deviation over episodes (ddof=1; 0 for a single episode).
    Columns: the `by` columns, episodes, accuracy, sd, ci95, low, high, adaptation_seconds
    (mean per episode).
    """
    require_columns(results, [*by, "accuracy", "adaptation_seconds"], "summarise_with_ci")
    rows = []
    for key, group in results.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        n = len(group)
        mean = float(group["accuracy"].mean())
        sd = float(group["accuracy"].std(ddof=1)) if n > 1 else 0.0
        half = 1.96 * sd / np.sqrt(n)
        rows.append({**dict(zip(by, key)), "episodes": n, "accuracy": mean, "sd": sd, "ci95": half,
                     "low": mean - half, "high": mean + half,
                     "adaptation_seconds": float(group["adaptation_seconds"].mean())})
    return pd.DataFrame(rows, columns=[*by, "episodes", "accuracy", "sd", "ci95", "low", "high",
                                       "adaptation_seconds"])
