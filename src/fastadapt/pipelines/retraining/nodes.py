"""Retraining nodes: newly labelled data in, a challenger fitted, champion / challenger decided.

Wiring only: each node builds `RetrainingSettings` from the `retraining` parameter block and calls
`fastadapt.monitoring.retraining` (rows, fit) and `fastadapt.monitoring.registry` (scores,
alias, records). The seed and decide nodes return their record twice: as the week's JSON file and
as a line for the decision log (`retraining.<name>.<step>_log`, appended by the catalog).
The MLflow registrations stay inside the registry calls: the registry module's docstring says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from fastadapt.monitoring.registry import (
    champion_challenger,
    decision_line,
    ensure_champion,
)
from fastadapt.monitoring.retraining import (
    RetrainingSettings,
    challenger_training_rows,
    extra_source_tables,
    fixed_test_rows,
    split_rows,
)
from fastadapt.monitoring.retraining import fit_challenger as fit_model
from fastadapt.readers import read_raw

log = logging.getLogger(__name__)


def seed_champion(current_model: Any, splits: pd.DataFrame, retraining: Mapping[str, Any],
                  name: str) -> tuple[dict, str]:
    """Register the catalog's current model as first champion of `name` when it has none."""
    settings = RetrainingSettings.from_params(retraining)
    model = settings.model(name)
    record = ensure_champion(current_model, name, split_rows(splits, "test"), settings.metric,
                             context={"source": model.current, "domain": model.domain})
    log.info("%s: %s", name, record["reason"])
    return record, decision_line(record)


def read_labelled(raw_files: Mapping[str, bytes], retraining: Mapping[str, Any],
                  name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newly labelled rows (text, label, origin train/test) with the reader's quarantine."""
    model = RetrainingSettings.from_params(retraining).model(name)
    result = read_raw(model.reader, raw_files, dict(model.reader_options), f"retraining.{name}")
    log.info("%s: %s", name, result.accounting(f"retraining.{name}"))
    return result.rows, result.quarantine


def fit_challenger(new_rows: pd.DataFrame, splits: pd.DataFrame, retraining: Mapping[str, Any],
                   *extra_tables: pd.DataFrame, name: str) -> Any:
    """A challenger fitted on the new training rows (plus the domain's train split and extra sources).

    `kind: tfidf` fits TF-IDF + logistic regression; `kind: adaptation` adapts a backbone with
    `fastadapt.adapt.adapt` and returns the fitted encoder classifier (a model directory, never a pickle).
    """
    challenger = RetrainingSettings.from_params(retraining).model(name).challenger
    tables = dict(zip(extra_source_tables(challenger), extra_tables))
    return fit_model(challenger_training_rows(new_rows, splits, challenger, tables, name), challenger, name)


def decide(
    challenger: Any, new_rows: pd.DataFrame, splits: pd.DataFrame, seed: Mapping[str, Any],
    retraining: Mapping[str, Any], name: str,
) -> tuple[dict[str, Any], str]:
    """Champion and challenger on the same fixed test set; the challenger promoted only by `margin`."""
    settings = RetrainingSettings.from_params(retraining)
    model = settings.model(name)
    context = {
        "domain": model.domain,
        "labelled_folder": model.labelled_folder,
        "n_new_train": int((new_rows["origin"] != "test").sum()),
        "n_new_test": int((new_rows["origin"] == "test").sum()),
        "test_sets": list(model.test_sets),
        "challenger_kind": model.challenger.kind,
        "seed_action": seed.get("action"),
    }
    test = fixed_test_rows(new_rows, splits, model.test_sets, name)
    record = champion_challenger(challenger, name, test, settings.margin, settings.metric, context)
    log.info("%s: %s", name, record["reason"])
    return record, decision_line(record)
