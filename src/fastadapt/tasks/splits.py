"""Train / validation / test splits of cleaned tables (PROTOCOL.md section 1).

Every split is a pure function of the rows and a `SplitSpec`, so reruns and other machines give
the same splits; made splits are stratified so that rare labels reach every split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from fastadapt.tasks._tables import require_columns

SPLITS = ("train", "validation", "test")
METHODS = ("made", "holdout_validation", "given")
_ALLOWED_SPLITS_BY_METHOD = {"holdout_validation": ("train", "test"), "given": SPLITS}
_DEFAULT_ORIGIN_MAPS = {
    "holdout_validation": {"train": "train", "test": "test"},
    "given": {split: split for split in SPLITS},
}


@dataclass(frozen=True)
class SplitSpec:
    """How a domain's rows become splits; checked on construction so a bad config fails early.

    - `made`: pool all rows; take a stratified `test_size` for test, then a stratified
      `validation_size` *of the rest* for validation (Financial PhraseBank: 0.2, then 0.125 = 1/8,
      i.e. 10 % of all rows).
    - `holdout_validation`: rows whose origin maps to `test` are the test split; rows whose
      origin maps to `train` give a stratified `validation_size` to validation, the rest train.
      The map defaults to train -> train, test -> test.
    - `given`: each row's origin names its split through `origin_map` (default: identity on
      train / validation / test).
    """

    method: str
    test_size: float = 0.2
    validation_size: float = 0.1
    seed: int = 42
    origin_map: Mapping[str, str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(
                f"SplitSpec.method must be one of {list(METHODS)}, got {self.method!r}"
            )
        for name in ("test_size", "validation_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ValueError(
                    f"SplitSpec.{name} must be a fraction strictly between 0 and 1, got {value!r}"
                )
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, (int, np.integer))
            or self.seed < 0
        ):
            raise ValueError(f"SplitSpec.seed must be a non-negative integer, got {self.seed!r}")
        if self.origin_map is not None:
            self._check_origin_map(self.origin_map)

    def _check_origin_map(self, origin_map: Mapping[str, str]) -> None:
        if self.method == "made":
            raise ValueError(
                "SplitSpec.origin_map is not used by method 'made' (it pools all rows); "
                f"it is allowed with {list(_ALLOWED_SPLITS_BY_METHOD)}"
            )
        if not isinstance(origin_map, Mapping):
            raise ValueError(
                f"SplitSpec.origin_map must map origin -> split, got {type(origin_map).__name__}"
            )
        allowed = _ALLOWED_SPLITS_BY_METHOD[self.method]
        wrong = {origin: split for origin, split in origin_map.items() if split not in allowed}
        if wrong:
            raise ValueError(
                f"SplitSpec.origin_map values for method {self.method!r} must be in "
                f"{list(allowed)}, got {wrong}"
            )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SplitSpec:
        """Build from a params dict (such as a Kedro parameters entry), refusing unknown keys."""
        allowed = [spec_field.name for spec_field in fields(cls)]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"SplitSpec params: unknown key(s) {unknown}; allowed: {allowed}")
        if "method" not in params:
            raise ValueError(f"SplitSpec params: 'method' is required, one of {list(METHODS)}")
        return cls(**params)

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
