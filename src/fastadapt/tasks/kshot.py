"""k-shot training sets (PROTOCOL.md sections 2 and 4).

The drawing is fixed exactly, so every model of a learning curve, and every rerun, trains on the
same k examples for a given (k, seed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fastadapt.config import Checks, Settings
from fastadapt.errors import UserInputError
from fastadapt.tasks._tables import require_columns


class KShotError(UserInputError):
    """The train split cannot give k examples of a class (or k mentions of an entity type)."""


@dataclass(frozen=True)
class KShotSettings(Settings):
    """The `kshot:` block: examples per class (`ks`), mentions per entity type (`ner_ks`), and the
    seeds of the draws; every (k, seed) is one training set."""

    ks: Sequence[int] = (1, 5, 10, 20)
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    ner_ks: Sequence[int] = (1, 5, 10)

    def validate(self, where: str = "kshot") -> None:
        check = Checks(self, where)
        for key, minimum in (("ks", 1), ("ner_ks", 1), ("seeds", 0)):
            check.integers(key, minimum)


def draw_kshot(
    train_rows: pd.DataFrame, k: int, seed: int, label_column: str = "label"
) -> list[int]:
    """Row ids of a k-per-class training set, drawn exactly as section 2 says.

    For each class in sorted label order, one `rng(seed)` shared across the classes chooses k
    indices without replacement into that class's row ids sorted ascending. Ids are returned in
    drawing order.
    """
    _check_k(k)
    require_columns(train_rows, ["row_id", label_column], "draw_kshot")
    ids_by_class = _row_ids_by_class(train_rows, label_column)
    short = {label: len(ids) for label, ids in ids_by_class.items() if len(ids) < k}
    if short:
        details = ", ".join(f"class {label!r} has {count} rows" for label, count in short.items())
        raise KShotError(f"cannot draw {k}-shot: {details} (fewer than k={k}) in the train split")

    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for class_ids in ids_by_class.values():
        picks = rng.choice(len(class_ids), size=k, replace=False)
        chosen.extend(int(row_id) for row_id in class_ids[picks])
    return chosen


def kshot_sets(
    train_rows: pd.DataFrame,
    ks: Iterable[int],
    seeds: Iterable[int],
    label_column: str = "label",
) -> pd.DataFrame:
    """All k-shot sets of a learning curve as one table: columns k, seed, row_id, label."""
    label_by_id = train_rows.set_index("row_id")[label_column].astype(str)
    seeds = list(seeds)  # iterated once per k
    frames = []
    for k in ks:
        for seed in seeds:
            row_ids = draw_kshot(train_rows, k, seed, label_column)
            frames.append(
                _set_frame(k, seed, row_ids).assign(label=label_by_id.loc[row_ids].to_numpy())
            )
    return _concat_sets(frames, extra_columns={"label": str})


def entity_mentions(tags: Sequence[str]) -> Counter[str]:
    """Mentions per entity type in one IOB2 tag sequence.

    A mention starts at `B-X`, or at an `I-X` that does not continue an X mention, the way
    seqeval's default reading counts chunks, so a stray `I-` is still one mention.
    """
    mentions: Counter[str] = Counter()
    previous_type = None
    for tag in tags:
        if tag == "O":
            previous_type = None
            continue
        prefix, _, entity_type = tag.partition("-")
        if prefix not in ("B", "I") or not entity_type:
            raise ValueError(f"not an IOB2 tag: {tag!r} (expected O, B-TYPE or I-TYPE)")
        if prefix == "B" or entity_type != previous_type:
            mentions[entity_type] += 1
        previous_type = entity_type
    return mentions


def draw_ner_kshot(
    train_rows: pd.DataFrame,
    k: int,
    seed: int,
    entity_types: Iterable[str] | None = None,
) -> list[int]:
    """Sentence row ids of a greedy k-shot NER support set (section 4, Yang and Katiyar 2020).

    Sentences sorted by row_id are visited in `rng(seed).permutation` order; a sentence is added
    when it holds a mention of a type that still has fewer than k, until every type has at least
    k. Types default to all types tagged in the train rows; mentions of other types are ignored.
    Ids are returned in the order they were added.
    """
    _check_k(k)
    require_columns(train_rows, ["row_id", "tags"], "draw_ner_kshot")
    ordered = train_rows.sort_values("row_id", kind="stable")
    row_ids = ordered["row_id"].to_numpy()
    mentions = [entity_mentions(tags) for tags in ordered["tags"]]
    totals = sum(mentions, Counter())
    types = sorted(totals) if entity_types is None else sorted(set(entity_types))
    short = {entity_type: totals[entity_type] for entity_type in types if totals[entity_type] < k}
    if short:
        details = ", ".join(
            f"type {entity_type!r} has {count} mentions" for entity_type, count in short.items()
        )
        raise KShotError(
            f"cannot draw {k}-shot NER: {details} (fewer than k={k}) in the train split"
        )

    rng = np.random.default_rng(seed)
    reached: Counter[str] = Counter()
    chosen: list[int] = []
    for position in rng.permutation(len(row_ids)):
        if all(reached[entity_type] >= k for entity_type in types):
            break
        sentence = mentions[position]
        if any(sentence[entity_type] and reached[entity_type] < k for entity_type in types):
            chosen.append(int(row_ids[position]))
            for entity_type in types:
                reached[entity_type] += sentence[entity_type]
    return chosen


def ner_kshot_sets(
    train_rows: pd.DataFrame,
    ks: Iterable[int],
    seeds: Iterable[int],
    entity_types: Iterable[str] | None = None,
) -> pd.DataFrame:
    """All greedy NER support sets as one table: columns k, seed, row_id."""
    types = None if entity_types is None else list(entity_types)
    seeds = list(seeds)  # iterated once per k
    frames = [
        _set_frame(k, seed, draw_ner_kshot(train_rows, k, seed, types))
        for k in ks
        for seed in seeds
    ]
    return _concat_sets(frames, extra_columns={})


def _row_ids_by_class(rows: pd.DataFrame, label_column: str) -> dict[str, np.ndarray]:
    """Each class's row ids sorted ascending, classes in sorted label order."""
    labels = rows[label_column].astype(str)
    return {
        label: np.sort(rows.loc[labels == label, "row_id"].to_numpy())
        for label in sorted(set(labels))
    }


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _set_frame(k: int, seed: int, row_ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "k": np.full(len(row_ids), k, dtype="int64"),
            "seed": np.full(len(row_ids), seed, dtype="int64"),
            "row_id": np.asarray(row_ids, dtype="int64"),
        }
    )


def _concat_sets(frames: list[pd.DataFrame], extra_columns: dict[str, type]) -> pd.DataFrame:
    """The sets stacked, with the right columns and dtypes even when there are none."""
    dtypes = {"k": "int64", "seed": "int64", "row_id": "int64", **extra_columns}
    if not frames:
        return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in dtypes.items()})
    return pd.concat(frames, ignore_index=True).astype(dtypes)


def unseen_class_rows(splits: pd.DataFrame, group_column: str | None = None) -> pd.DataFrame:
    """Test rows of classes that training never saw (PROTOCOL.md section 5).

    With `group_column` (SGD's `service`), a class is unseen when its group never occurs in the
    train split; without it, when the label itself never does.
    """
    train = splits[splits["split"] == "train"]
    test = splits[splits["split"] == "test"]
    if group_column:
        require_columns(splits, [group_column], "unseen_class_rows")
        return test[~test[group_column].isin(set(train[group_column]))]
    return test[~test["label"].isin(set(train["label"]))]


def unseen_class_kshot_sets(
    splits: pd.DataFrame, ks: Iterable[int], seeds: Iterable[int], group_column: str | None = None
) -> pd.DataFrame:
    """k-shot support sets on unseen classes, drawn from the test split as section 2 draws.

    Columns k, seed, row_id, label, role: the support rows, and as `query` every other test row
    of those classes (the support is left out of the query).
    """
    unseen = unseen_class_rows(splits, group_column)
    if unseen.empty:
        raise KShotError("no test rows of classes unseen in training: nothing to draw unseen-class k-shot sets from")
    return support_query_sets(unseen, ks, seeds)


def support_query_sets(rows: pd.DataFrame, ks: Iterable[int], seeds: Iterable[int]) -> pd.DataFrame:
    """Every row of `rows` as `support` (drawn as section 2 draws, per k and seed) or `query`.

    Columns k, seed, row_id, label, role: a new task made of `rows`, support left out of the query.
    """
    seeds = list(seeds)
    frames = []
    for k in ks:
        for seed in seeds:
            support = set(draw_kshot(rows, k, seed))
            roles = np.where(rows["row_id"].isin(support), "support", "query")
            frames.append(
                pd.DataFrame({"k": int(k), "seed": int(seed), "row_id": rows["row_id"].to_numpy(),
                              "label": rows["label"].astype(str).to_numpy(), "role": roles})
            )
    return pd.concat(frames, ignore_index=True)
