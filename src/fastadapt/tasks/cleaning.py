"""Duplicate and label-conflict cleaning before any split (PROTOCOL.md section 0).

Training material is deduplicated so that no sentence is counted twice and no made split holds one
sentence twice; copies that disagree on the label are quarantined, since neither label can be
trusted. Official test sets stay exactly as published, so figures compare with the literature;
their overlap with training material is only counted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from fastadapt.readers.quarantine import quarantine_frame
from fastadapt.tasks._tables import require_columns

_WHITESPACE_RUN = re.compile(r"\s+")


def duplicate_key(text: str) -> str:
    """The protocol's duplicate key: NFKC, strip, whitespace runs to one space, casefold.

    Two texts with one key read the same to a model's user, so they count as one sentence.
    """
    normalised = unicodedata.normalize("NFKC", text).strip()
    return _WHITESPACE_RUN.sub(" ", normalised).casefold()


def ner_key_and_label(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Key and label of NER sentences: the key of the joined tokens and the joined tags.

    Two copies of a sentence agree only when every tag agrees, so the whole tag sequence is the
    label that `deduplicate` and `overlap_with_training` compare.
    """
    require_columns(rows, ["tokens", "tags"], "ner_key_and_label")
    key = rows["tokens"].map(lambda tokens: duplicate_key(" ".join(tokens)))
    label = rows["tags"].map(lambda tags: " ".join(tags))
    return key.astype(str), label.astype(str)


def deduplicate(
    rows: pd.DataFrame,
    corpus: str,
    test_origins: Iterable[str] | str,
    key: Sequence[str] | pd.Series | None = None,
    label: Sequence[str] | pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop duplicates and quarantine label conflicts in each training origin separately.

    Within one origin that is not in `test_origins`, copies of a key with one label keep the
    copy with the smallest row_id (the others get reason `duplicate`); when the copies carry
    different labels, all go with reason `conflicting_labels`. Rows of test origins are returned
    untouched. `key` and `label` (one value per row, in row order) default to the duplicate key
    of `text` and the `label` column; pass `ner_key_and_label(rows)` for NER tables.

    Returns (kept rows in their input order with a fresh index, quarantine table).
    """
    require_columns(rows, ["file", "line"], "deduplicate")
    table = _keyed_table(rows, key, label, "deduplicate")
    test_origin_set = _origin_set(test_origins)

    training = table[~table["origin"].isin(test_origin_set)].sort_values("row_id", kind="stable")
    copies = training.groupby(["origin", "key"], sort=False)["label"]
    conflicting = copies.transform("nunique") > 1
    duplicate = ~conflicting & training.duplicated(["origin", "key"], keep="first")
    reasons = pd.concat(
        [
            pd.Series("conflicting_labels", index=training.index[conflicting]),
            pd.Series("duplicate", index=training.index[duplicate]),
        ]
    )

    records_table = rows.reset_index(drop=True)
    raw = table["label"] + "\t" + _record_text(records_table)
    quarantined = table.loc[reasons.index].assign(reason=reasons).sort_values("row_id")
    records = [
        {
            "corpus": corpus,
            "file": records_table.at[position, "file"],
            "line": records_table.at[position, "line"],
            "reason": reason,
            "raw": raw.at[position],
        }
        for position, reason in quarantined["reason"].items()
    ]
    kept = records_table.drop(index=reasons.index).reset_index(drop=True)
    return kept, quarantine_frame(records)


def overlap_with_training(
    rows: pd.DataFrame,
    test_origins: Iterable[str] | str,
    key: Sequence[str] | pd.Series | None = None,
    label: Sequence[str] | pd.Series | None = None,
) -> dict[str, int]:
    """Count test rows whose key also appears in training material, with the same or another label.

    Test sets are never cleaned, so the report shows how many of their rows a model may have
    seen in training. `in_training` = `same_label` (the key appears in training with this row's
    label) + `different_label` (it appears only with other labels). `key` and `label` as in
    `deduplicate`.
    """
    table = _keyed_table(rows, key, label, "overlap_with_training")
    is_test = table["origin"].isin(_origin_set(test_origins))
    test, training = table[is_test], table[~is_test]

    training_keys = set(training["key"])
    training_pairs = set(zip(training["key"], training["label"]))
    in_training = test["key"].isin(training_keys)
    same_label = pd.Series(
        [pair in training_pairs for pair in zip(test["key"], test["label"])],
        index=test.index,
        dtype=bool,
    )
    return {
        "test_rows": int(len(test)),
        "in_training": int(in_training.sum()),
        "same_label": int(same_label.sum()),
        "different_label": int((in_training & ~same_label).sum()),
    }


def _keyed_table(
    rows: pd.DataFrame,
    key: Sequence[str] | pd.Series | None,
    label: Sequence[str] | pd.Series | None,
    caller: str,
) -> pd.DataFrame:
    """row_id, origin, key and label of each row, on a 0..n-1 index in row order."""
    require_columns(rows, ["row_id", "origin"], caller)
    if key is None:
        require_columns(rows, ["text"], f"{caller} (default key)")
        key = rows["text"].map(duplicate_key)
    if label is None:
        require_columns(rows, ["label"], f"{caller} (default label)")
        label = rows["label"]
    for name, values in (("key", key), ("label", label)):
        if len(values) != len(rows):
            raise ValueError(f"{caller}: {name} has {len(values)} values for {len(rows)} rows")
    return pd.DataFrame(
        {
            "row_id": rows["row_id"].to_numpy(),
            "origin": rows["origin"].astype(str).to_numpy(),
            "key": np.asarray(key, dtype=object).astype(str),
            "label": np.asarray(label, dtype=object).astype(str),
        }
    )


def _record_text(rows: pd.DataFrame) -> pd.Series:
    """The text a reviewer reads in quarantine: `text`, or the joined tokens of an NER row."""
    if "text" in rows.columns:
        return rows["text"].astype(str)
    require_columns(rows, ["tokens"], "deduplicate (quarantine text)")
    return rows["tokens"].map(" ".join).astype(str)


def _origin_set(origins: Iterable[str] | str) -> set[str]:
    """A set of origin names; one name alone is one origin, not its characters."""
    return {origins} if isinstance(origins, str) else set(origins)
