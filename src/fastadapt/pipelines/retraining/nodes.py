"""Retraining nodes: newly labelled data in, a challenger fitted, champion / challenger decided.

The registry work (logging, scoring both models on one test set, the alias, the decision log)
lives in `fastadapt.monitoring.registry`; these nodes pick the rows and the settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from fastadapt.config import ConfigError
from fastadapt.models.baselines import TfidfLogisticRegression
from fastadapt.monitoring.registry import METRICS, champion_challenger, ensure_champion
from fastadapt.readers import read_raw
from fastadapt.tasks.mixed import mixed_rows, parse_sources

log = logging.getLogger(__name__)

CHALLENGER_KINDS = ("tfidf", "adaptation")
TEST_SETS = ("domain", "new")


def _settings(retraining: Mapping[str, Any], name: str) -> dict[str, Any]:
    models = retraining.get("models") or {}
    if name not in models:
        raise ConfigError(f"retraining.models has no entry '{name}'; found {sorted(models)}")
    return dict(models[name] or {})


def _common(retraining: Mapping[str, Any]) -> tuple[str, float, str | None]:
    metric = retraining.get("metric", "macro_f1")
    if metric not in METRICS:
        raise ConfigError(f"retraining.metric is {metric!r}; allowed: {list(METRICS)}")
    margin = retraining.get("margin", 0.01)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin < 0:
        raise ConfigError(f"retraining.margin must be a number >= 0; got {margin!r}")
    return metric, float(margin), retraining.get("decision_log")


def _split(splits: pd.DataFrame, name: str) -> pd.DataFrame:
    return splits.loc[splits["split"] == name, ["text", "label"]].reset_index(drop=True)


def seed_champion(current_model: Any, splits: pd.DataFrame, retraining: Mapping[str, Any], name: str) -> dict:
    """Register the catalog's current model as first champion of `name` when it has none."""
    settings = _settings(retraining, name)
    metric, _, decision_log = _common(retraining)
    record = ensure_champion(current_model, name, _split(splits, "test"), decision_log, metric,
                             context={"source": settings.get("current"), "domain": settings.get("domain")})
    log.info("%s: %s", name, record["reason"])
    return record


def read_labelled(raw_files: Mapping[str, bytes], retraining: Mapping[str, Any], name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newly labelled rows (text, label, origin train/test) with the reader's quarantine."""
    settings = _settings(retraining, name)
    result = read_raw(settings.get("reader", "labelled_csv"), raw_files, settings.get("reader_options") or {},
                      f"retraining.{name}")
    log.info("%s: %s", name, result.accounting(f"retraining.{name}"))
    return result.rows, result.quarantine


def _test_rows(new_rows: pd.DataFrame, splits: pd.DataFrame, settings: Mapping[str, Any], name: str) -> pd.DataFrame:
    chosen = settings.get("test_sets", list(TEST_SETS))
    if isinstance(chosen, str) or not chosen or set(chosen) - set(TEST_SETS):
        raise ConfigError(f"retraining.models.{name}.test_sets must be a non-empty list of {list(TEST_SETS)}; got {chosen!r}")
    parts = []
    if "domain" in chosen:
        parts.append(_split(splits, "test"))
    if "new" in chosen:
        parts.append(new_rows.loc[new_rows["origin"] == "test", ["text", "label"]])
    rows = pd.concat(parts, ignore_index=True)
    if rows.empty:
        raise ValueError(f"retraining '{name}': the test set ({chosen}) is empty")
    return rows


def extra_source_tables(settings: Mapping[str, Any], name: str) -> list[str]:
    """The catalog tables the challenger's `extra_sources` read, in a fixed order (node inputs)."""
    sources = (settings.get("challenger") or {}).get("extra_sources") or {}
    if not sources:
        return []
    return sorted({s.table for s in parse_sources(sources, f"retraining.models.{name}.challenger.extra_sources")})


def challenger_training_rows(new_rows: pd.DataFrame, splits: pd.DataFrame, challenger: Mapping[str, Any],
                             tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """New training rows, the domain's train split (include_domain_train) and the extra sources."""
    train = new_rows.loc[new_rows["origin"] != "test", ["text", "label"]]
    if challenger.get("include_domain_train", True):
        train = pd.concat([_split(splits, "train"), train], ignore_index=True)
    extra = challenger.get("extra_sources") or {}
    if extra:
        sources = parse_sources(extra, f"retraining.models.{name}.challenger.extra_sources")
        train = pd.concat([train, mixed_rows(tables, sources)[["text", "label"]]], ignore_index=True)
    if train.empty:
        raise ValueError(f"retraining '{name}': no training rows for the challenger")
    return train.reset_index(drop=True)


def fit_challenger(new_rows: pd.DataFrame, splits: pd.DataFrame, retraining: Mapping[str, Any],
                   *extra_tables: pd.DataFrame, name: str) -> Any:
    """A challenger fitted on the new training rows (plus the domain's train split and extra sources).

    `kind: tfidf` fits TF-IDF + logistic regression; `kind: adaptation` adapts a backbone with
    `fastadapt.adapt.adapt` (`adapt.strategy`: finetune_all, finetune_lora, finetune_head...) and
    returns the fitted encoder classifier (saved as a model directory, never a pickle).
    """
    settings = _settings(retraining, name)
    challenger = dict(settings.get("challenger") or {})
    kind = challenger.get("kind", "tfidf")
    if kind not in CHALLENGER_KINDS:
        raise ConfigError(f"retraining.models.{name}.challenger.kind is {kind!r}; allowed: {list(CHALLENGER_KINDS)}")
    tables = dict(zip(extra_source_tables(settings, name), extra_tables))
    train = challenger_training_rows(new_rows, splits, challenger, tables, name)
    started, cpu_started = time.perf_counter(), time.process_time()
    if kind == "tfidf":
        options = dict(challenger.get("tfidf") or {})
        if "ngram_range" in options:
            options["ngram_range"] = tuple(options["ngram_range"])
        model = TfidfLogisticRegression(**options).fit(train["text"].tolist(), train["label"].tolist())
    else:
        import torch

        from fastadapt.adapt import adapt

        if challenger.get("num_threads"):
            torch.set_num_threads(int(challenger["num_threads"]))
        options = dict(challenger.get("adapt") or {})
        strategy = options.pop("strategy", "finetune_all")
        predictor = adapt(str(challenger.get("backbone", "minilm-l6")), train, strategy,
                          where=f"retraining.models.{name}.challenger.adapt.strategy", **options)
        model = predictor.model
    log.info("%s: %s challenger fitted on %d rows in %.1f s (%.1f s CPU)", name, kind, len(train),
             time.perf_counter() - started, time.process_time() - cpu_started)
    return model


def decide(
    challenger: Any, new_rows: pd.DataFrame, splits: pd.DataFrame, seed: Mapping[str, Any],
    retraining: Mapping[str, Any], name: str,
) -> dict[str, Any]:
    """Champion and challenger on the same fixed test set; the challenger promoted only by `margin`."""
    settings = _settings(retraining, name)
    metric, margin, decision_log = _common(retraining)
    test = _test_rows(new_rows, splits, settings, name)
    context = {
        "domain": settings.get("domain"),
        "labelled_folder": settings.get("labelled_folder"),
        "n_new_train": int((new_rows["origin"] != "test").sum()),
        "n_new_test": int((new_rows["origin"] == "test").sum()),
        "test_sets": list(settings.get("test_sets", list(TEST_SETS))),
        "challenger_kind": (settings.get("challenger") or {}).get("kind", "tfidf"),
        "seed_action": seed.get("action"),
    }
    record = champion_challenger(challenger, name, test, margin, metric, decision_log, context)
    log.info("%s: %s", name, record["reason"])
    return record
