"""Few-shot episodes over class splits (PROTOCOL.md section 3).

Episode i of split s comes from `rng([s, i])` alone, so every method meets the same episodes and
their differences are paired; rows of classes outside the split's class list are never read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fastadapt.config import Checks, Settings
from fastadapt.tasks._tables import require_columns

EPISODE_COLUMNS = ["setting", "split", "episode", "label", "row_id", "role"]


@dataclass(frozen=True)
class EpisodeSettings(Settings):
    """The `episodes:` block: which domain and raw class-split folder the meta-test episodes come
    from, and the settings drawn on each split (`n_way: null` is every test class)."""

    domain: str = "customer_intent"
    class_splits: str = "banking77_class_splits"  # folder under data/01_raw: 01..05/{train,valid,test}.txt
    n_query: int = 10
    n_episodes: int = 100
    settings: dict[str, Any] = field(default_factory=lambda: {
        "5way_1shot": {"n_way": 5, "k_shot": 1},
        "5way_5shot": {"n_way": 5, "k_shot": 5},
        "27way_5shot": {"n_way": None, "k_shot": 5},
    })

    @property
    def draws(self) -> list[tuple[str, int | None, int]]:
        """(setting name, n_way, k_shot) of each configured setting."""
        return [(name, spec.get("n_way"), spec["k_shot"]) for name, spec in self.settings.items()]

    def validate(self, where: str = "episodes") -> None:
        check = Checks(self, where)
        check.text("domain")
        check.text("class_splits")
        check.integer("n_query", 1)
        check.integer("n_episodes", 1)
        if not isinstance(self.settings, Mapping) or not self.settings:
            check.fail("settings", "allowed: a mapping of setting name to {n_way, k_shot}")
        for name, spec in self.settings.items():
            n_way, k_shot = (spec.get("n_way"), spec.get("k_shot")) if isinstance(spec, Mapping) else (0, 0)
            ok = isinstance(spec, Mapping) and set(spec) <= {"n_way", "k_shot"}
            ok = ok and (n_way is None or (isinstance(n_way, int) and not isinstance(n_way, bool) and n_way >= 2))
            ok = ok and isinstance(k_shot, int) and not isinstance(k_shot, bool) and k_shot >= 1
            if not ok:
                check.fail("settings", f"{name}: allowed: {{n_way: an integer >= 2 or null, k_shot: an integer >= 1}}")


@dataclass(frozen=True)
class Episode:
    """One N-way episode: `support[c]` and `query[c]` are row ids of class `labels[c]`."""

    labels: list[str]
    support: np.ndarray
    query: np.ndarray


def parse_class_list(text: str) -> list[str]:
    """Class names of a class-split file, one per line; blank lines ignored.

    A name twice would make one class count as two ways of an episode, so it is an error.
    """
    classes = [line.strip() for line in text.splitlines() if line.strip()]
    repeated = sorted(name for name, count in Counter(classes).items() if count > 1)
    if repeated:
        raise ValueError(f"class list names these classes more than once: {repeated}")
    return classes


def sample_episode(
    rows_by_label: Mapping[str, np.ndarray],
    n_way: int | None,
    k_shot: int,
    n_query: int,
    rng: np.random.Generator,
) -> Episode:
    """Draw one episode from row ids grouped by class.

    `rng` chooses `n_way` classes (None: all) without replacement from the sorted class list;
    then, for each chosen class in sorted order, `k_shot + n_query` distinct rows from its ids
    sorted ascending: the first `k_shot` are support, the rest query, so the two never share a
    row. Every class must hold enough rows, so whether a call fails does not depend on the draw.
    """
    classes = sorted(rows_by_label)
    way = len(classes) if n_way is None else n_way
    if way < 1 or way > len(classes):
        raise ValueError(
            f"n_way={n_way} needs between 1 and {len(classes)} classes (the classes given)"
        )
    if k_shot < 1 or n_query < 0:
        raise ValueError(
            f"k_shot must be >= 1 and n_query >= 0, got k_shot={k_shot}, n_query={n_query}"
        )
    per_class = k_shot + n_query
    short = {
        label: len(rows_by_label[label])
        for label in classes
        if len(rows_by_label[label]) < per_class
    }
    if short:
        details = ", ".join(f"class {label!r} has {count} rows" for label, count in short.items())
        raise ValueError(
            f"episodes need {per_class} rows per class ({k_shot} support + {n_query} query): "
            f"{details}"
        )

    chosen = [
        classes[index] for index in np.sort(rng.choice(len(classes), size=way, replace=False))
    ]
    drawn = []
    for label in chosen:
        class_ids = np.sort(np.asarray(rows_by_label[label]))
        drawn.append(class_ids[rng.choice(len(class_ids), size=per_class, replace=False)])
    draws = np.asarray(drawn, dtype="int64").reshape(way, per_class)
    return Episode(labels=chosen, support=draws[:, :k_shot], query=draws[:, k_shot:])


def class_split_episodes(
    rows: pd.DataFrame,
    classes: Sequence[str],
    split_index: int,
    n_way: int | None,
    k_shot: int,
    n_query: int,
    n_episodes: int,
    setting: str,
) -> pd.DataFrame:
    """Episodes of one setting on one class split, episode i drawn with `rng([split_index, i])`.

    Only rows whose label is in `classes` are used (pass all rows of the split's classes for
    meta-validation and meta-test). One row per drawn row: setting, split, episode, label,
    row_id, role (support / query), classes in sorted order, support before query.
    """
    require_columns(rows, ["row_id", "label"], "class_split_episodes")
    labels = rows["label"].astype(str)
    rows_by_label = {
        label: np.sort(rows.loc[labels == label, "row_id"].to_numpy()) for label in classes
    }
    records = []
    for episode_index in range(n_episodes):
        episode = sample_episode(
            rows_by_label,
            n_way,
            k_shot,
            n_query,
            np.random.default_rng([split_index, episode_index]),
        )
        for label, support_ids, query_ids in zip(episode.labels, episode.support, episode.query):
            for role, ids in (("support", support_ids), ("query", query_ids)):
                records.extend(
                    (setting, split_index, episode_index, label, int(row_id), role)
                    for row_id in ids
                )
    return pd.DataFrame.from_records(records, columns=EPISODE_COLUMNS).astype(
        {
            "setting": str,
            "split": "int64",
            "episode": "int64",
            "label": str,
            "row_id": "int64",
            "role": str,
        }
    )
