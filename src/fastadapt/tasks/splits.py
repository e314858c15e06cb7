"""Train / validation / test splits of cleaned tables (PROTOCOL.md section 1).

Every split is a pure function of the rows and a `SplitSpec`, so reruns and other machines give
the same splits; made splits are stratified so that rare labels reach every split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from fastadapt.config import Checks, ConfigError, Settings
from fastadapt.tasks._tables import require_columns

SPLITS = ("train", "validation", "test")
METHODS = ("made", "holdout_validation", "given")
_ALLOWED_SPLITS_BY_METHOD = {"holdout_validation": ("train", "test"), "given": SPLITS}
_DEFAULT_ORIGIN_MAPS = {
    "holdout_validation": {"train": "train", "test": "test"},
    "given": {split: split for split in SPLITS},
}


@dataclass(frozen=True)
class SplitSpec(Settings):
    """How a domain's rows become splits; `from_params` checks it, so a bad config fails early.

    - `made`: pool all rows; take a stratified `test_size` for test, then a stratified
      `validation_size` *of the rest* for validation (Financial PhraseBank: 0.2, then 0.125 = 1/8,
      i.e. 10 % of all rows).
    - `holdout_validation`: rows whose origin maps to `test` are the test split; rows whose
      origin maps to `train` give a stratified `validation_size` to validation, the rest train.
      The map defaults to train -> train, test -> test.
    - `given`: each row's origin names its split through `origin_map` (default: identity on
      train / validation / test).
    """

    method: str | None = None  # required: one of METHODS
    test_size: float = 0.2
    validation_size: float = 0.1
    seed: int = 42
    origin_map: Mapping[str, str] | None = field(default=None)

    def validate(self, where: str = "split") -> None:
        check = Checks(self, where)
        check.choice("method", METHODS)
        check.number("test_size", 0, 1, strict_low=True)
        check.number("validation_size", 0, 1, strict_low=True)
        check.integer("seed", 0)
        if self.origin_map is None:
            return
        if self.method == "made":
            check.fail("origin_map", f"not used by method 'made' (it pools all rows); it is allowed with "
                                     f"{list(_ALLOWED_SPLITS_BY_METHOD)}")
        if not isinstance(self.origin_map, Mapping):
            check.fail("origin_map", "allowed: a mapping of origin -> split")
        allowed = _ALLOWED_SPLITS_BY_METHOD[self.method]
        wrong = {origin: split for origin, split in self.origin_map.items() if split not in allowed}
        if wrong:
            raise ConfigError(f"{where}.origin_map maps {wrong}; with method {self.method!r} the splits "
                              f"must be in {list(allowed)}")

    def resolved_origin_map(self) -> dict[str, str]:
        """The origin map in force: the given one, or the method's default."""
        return dict(self.origin_map or _DEFAULT_ORIGIN_MAPS[self.method])


def assign_splits(rows: pd.DataFrame, spec: SplitSpec, label_column: str = "label") -> pd.DataFrame:
    """The rows sorted by row_id with a `split` column (train / validation / test) added.

    Sorting first makes the stratified draws depend only on the rows, not on their order in the
    input.
    """
    require_columns(rows, ["row_id"], "assign_splits")
    ordered = rows.sort_values("row_id", kind="stable").reset_index(drop=True)
    if spec.method == "made":
        require_columns(ordered, [label_column], "assign_splits (method 'made')")
        split = _made_splits(ordered, spec, label_column)
    elif spec.method == "holdout_validation":
        require_columns(ordered, [label_column], "assign_splits (method 'holdout_validation')")
        split = _holdout_validation_splits(ordered, spec, label_column)
    else:
        split = _mapped_origins(ordered, spec)
    return ordered.assign(split=pd.Series(split, dtype=str))


def _made_splits(rows: pd.DataFrame, spec: SplitSpec, label_column: str) -> np.ndarray:
    row_ids = rows["row_id"].to_numpy()
    labels = rows[label_column].astype(str).to_numpy()
    rest_ids, test_ids, rest_labels, _ = _stratified_split(
        row_ids, labels, spec.test_size, spec.seed, "test"
    )
    _, validation_ids, _, _ = _stratified_split(
        rest_ids, rest_labels, spec.validation_size, spec.seed, "validation"
    )
    split = np.full(len(rows), "train", dtype=object)
    split[np.isin(row_ids, test_ids)] = "test"
    split[np.isin(row_ids, validation_ids)] = "validation"
    return split


def _holdout_validation_splits(
    rows: pd.DataFrame, spec: SplitSpec, label_column: str
) -> np.ndarray:
    split = _mapped_origins(rows, spec)
    is_train = split == "train"
    train_ids = rows["row_id"].to_numpy()[is_train]
    train_labels = rows[label_column].astype(str).to_numpy()[is_train]
    _, validation_ids, _, _ = _stratified_split(
        train_ids, train_labels, spec.validation_size, spec.seed, "validation"
    )
    split[np.isin(rows["row_id"].to_numpy(), validation_ids)] = "validation"
    return split


def _mapped_origins(rows: pd.DataFrame, spec: SplitSpec) -> np.ndarray:
    require_columns(rows, ["origin"], f"assign_splits (method {spec.method!r})")
    origin_map = spec.resolved_origin_map()
    origins = rows["origin"].astype(str)
    unmapped = sorted(set(origins) - set(origin_map))
    if unmapped:
        raise ValueError(
            f"assign_splits (method {spec.method!r}): origin(s) {unmapped} have no split; "
            f"origin_map covers {sorted(origin_map)}"
        )
    return origins.map(origin_map).to_numpy(dtype=object)


def _stratified_split(
    row_ids: np.ndarray, labels: np.ndarray, size: float, seed: int, held_out: str
) -> list[np.ndarray]:
    """`train_test_split` stratified by label, failing with the class that cannot be stratified."""
    names, counts = np.unique(labels, return_counts=True)
    too_small = {str(name): int(count) for name, count in zip(names, counts) if count < 2}
    if too_small:
        raise ValueError(
            f"cannot stratify the {held_out} split: class(es) with fewer than 2 rows "
            f"(class: rows) {too_small}"
        )
    try:
        return train_test_split(row_ids, labels, test_size=size, random_state=seed, stratify=labels)
    except ValueError as error:
        raise ValueError(
            f"cannot stratify the {held_out} split ({size} of {len(row_ids)} rows, "
            f"{len(names)} classes): {error}"
        ) from error
