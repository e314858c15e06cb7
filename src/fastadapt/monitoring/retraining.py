"""The weekly retraining of a registered model: its settings, the rows, and the challenger's fit.

`RetrainingSettings.from_params(params["retraining"], where="retraining")` validates the whole
`retraining:` block (conf/base/parameters_retraining.yml); each model under `models:` is a
`RetrainedModel` with its `ChallengerSettings`. The field defaults are the only defaults. The
registry side (scoring both models on one test set, the alias, the records) is in
`fastadapt.monitoring.registry`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Self

import pandas as pd

from fastadapt.config import Checks, ConfigError, Settings, check_keys
from fastadapt.monitoring.registry import METRICS
from fastadapt.tasks.mixed import MixedSource, mixed_rows, parse_sources

log = logging.getLogger(__name__)

CHALLENGER_KINDS = ("tfidf", "adaptation")
TEST_SETS = ("domain", "new")


@dataclass(frozen=True)
class ChallengerSettings(Settings):
    """How a challenger is fitted (`retraining.models.<name>.challenger`).

    - ``kind``: ``tfidf`` (TF-IDF + logistic regression, options ``tfidf``) or ``adaptation``
      (``fastadapt.adapt.adapt`` on ``backbone`` with the options ``adapt``, its ``strategy``
      among them; ``num_threads`` torch threads, None: torch's default);
    - ``include_domain_train``: train on the domain's train split too;
    - ``extra_sources``: more labelled rows, each source's labels mapped explicitly
      (`fastadapt.tasks.mixed.MixedSource`).
    """

    kind: str = "tfidf"
    include_domain_train: bool = True
    extra_sources: tuple[MixedSource, ...] = ()
    backbone: str = "minilm-l6"
    num_threads: int | None = None
    adapt: Mapping[str, Any] = field(default_factory=dict)
    tfidf: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str) -> Self:
        """Validated settings; `extra_sources` (a mapping of source name to settings) parsed."""
        values = check_keys(params, [f.name for f in fields(cls)], where)
        if values.get("extra_sources"):
            values["extra_sources"] = tuple(parse_sources(values["extra_sources"], f"{where}.extra_sources"))
        else:
            values.pop("extra_sources", None)
        settings = cls(**values)
        settings.validate(where)
        return settings

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        check.choice("kind", CHALLENGER_KINDS)
        check.boolean("include_domain_train")
        check.text("backbone")
        check.integer("num_threads", 1, optional=True)
        for key in ("adapt", "tfidf"):
            if not isinstance(getattr(self, key), Mapping):
                check.fail(key, "allowed: a mapping of settings")


@dataclass(frozen=True)
class RetrainedModel(Settings):
    """One registered model (`retraining.models.<name>`): its domain (splits), its current catalog
    model (the first champion), and the newly labelled folder under data/01_raw (None: no
    challenger this week) with its reader."""

    domain: str | None = None
    current: str | None = None
    labelled_folder: str | None = None
    reader: str = "labelled_csv"
    reader_options: Mapping[str, Any] = field(default_factory=dict)
    test_sets: tuple[str, ...] = TEST_SETS
    challenger: ChallengerSettings = field(default_factory=ChallengerSettings)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str) -> Self:
        values = check_keys(params, [f.name for f in fields(cls)], where)
        values["challenger"] = ChallengerSettings.from_params(values.get("challenger"), f"{where}.challenger")
        if isinstance(values.get("test_sets"), list):
            values["test_sets"] = tuple(values["test_sets"])
        settings = cls(**values)
        settings.validate(where)
        return settings

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        if not self.domain or not self.current:
            raise ConfigError(f"{where} needs `domain` (its splits) and `current` (a catalog model)")
        check.text("domain")
        check.text("current")
        check.text("labelled_folder", optional=True)
        check.text("reader")
        if not isinstance(self.reader_options, Mapping):
            check.fail("reader_options", "allowed: a mapping of reader options")
        chosen = self.test_sets
        if not isinstance(chosen, tuple) or not chosen or set(chosen) - set(TEST_SETS):
            check.fail("test_sets", f"allowed: a non-empty list of {list(TEST_SETS)}")


@dataclass(frozen=True)
class RetrainingSettings(Settings):
    """The `retraining:` block: the decision's metric and margin, and the registered models."""

    metric: str = "macro_f1"
    margin: float = 0.01
    models: Mapping[str, RetrainedModel] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = "retraining") -> Self:
        if isinstance(params, Mapping) and "decision_log" in params:
            raise ConfigError(f"{where}.decision_log is no longer a parameter: the decision log is the catalog "
                              "dataset `retraining.{name}.{step}_log` (conf/base/catalog_monitoring.yml)")
        values = check_keys(params, [f.name for f in fields(cls)], where)
        models = values.get("models") or {}
        if not isinstance(models, Mapping):
            raise ConfigError(f"{where}.models must map registered model names to their settings; got {models!r}")
        values["models"] = {str(name): RetrainedModel.from_params(spec, f"{where}.models.{name}")
                            for name, spec in models.items()}
        settings = cls(**values)
        settings.validate(where)
        return settings

    def validate(self, where: str = "retraining") -> None:
        check = Checks(self, where)
        check.choice("metric", METRICS)
        check.number("margin", 0.0)

    def model(self, name: str, where: str = "retraining") -> RetrainedModel:
        """The settings of registered model `name`."""
        if name not in self.models:
            raise ConfigError(f"{where}.models has no entry '{name}'; found {sorted(self.models)}")
        return self.models[name]


def split_rows(splits: pd.DataFrame, name: str) -> pd.DataFrame:
    """The text and label of one split (`train`, `test`) of a domain's splits."""
    return splits.loc[splits["split"] == name, ["text", "label"]].reset_index(drop=True)


def fixed_test_rows(new_rows: pd.DataFrame, splits: pd.DataFrame, test_sets: Sequence[str], name: str) -> pd.DataFrame:
    """The fixed test set: the domain's test split and / or the new folder's test rows."""
    parts = []
    if "domain" in test_sets:
        parts.append(split_rows(splits, "test"))
    if "new" in test_sets:
        parts.append(new_rows.loc[new_rows["origin"] == "test", ["text", "label"]])
    rows = pd.concat(parts, ignore_index=True)
    if rows.empty:
        raise ValueError(f"retraining '{name}': the test set ({list(test_sets)}) is empty")
    return rows


def challenger_training_rows(new_rows: pd.DataFrame, splits: pd.DataFrame, challenger: ChallengerSettings,
                             tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """New training rows, the domain's train split (include_domain_train) and the extra sources."""
    train = new_rows.loc[new_rows["origin"] != "test", ["text", "label"]]
    if challenger.include_domain_train:
        train = pd.concat([split_rows(splits, "train"), train], ignore_index=True)
    if challenger.extra_sources:
        train = pd.concat([train, mixed_rows(tables, challenger.extra_sources)[["text", "label"]]], ignore_index=True)
    if train.empty:
        raise ValueError(f"retraining '{name}': no training rows for the challenger")
    return train.reset_index(drop=True)


def extra_source_tables(challenger: ChallengerSettings) -> list[str]:
    """The catalog tables the challenger's `extra_sources` read, in a fixed order (node inputs)."""
    return sorted({source.table for source in challenger.extra_sources})


def fit_challenger(train: pd.DataFrame, challenger: ChallengerSettings, name: str) -> Any:
    """A challenger fitted on `train`: TF-IDF + logistic regression, or a backbone adapted with
    `fastadapt.adapt.adapt` (the fitted encoder classifier, saved as a model directory)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    if challenger.kind == "tfidf":
        from fastadapt.models.baselines import TfidfLogisticRegression

        options = dict(challenger.tfidf)
        if "ngram_range" in options:
            options["ngram_range"] = tuple(options["ngram_range"])
        model = TfidfLogisticRegression(**options).fit(train["text"].tolist(), train["label"].tolist())
    else:
        # Imported here: a TF-IDF challenger needs no torch.
        import torch

        from fastadapt.adapt import adapt

        if challenger.num_threads:
            torch.set_num_threads(challenger.num_threads)
        options = dict(challenger.adapt)
        strategy = options.pop("strategy", "finetune_all")
        predictor = adapt(challenger.backbone, train, strategy,
                          where=f"retraining.models.{name}.challenger.adapt.strategy", **options)
        model = predictor.model
    log.info("%s: %s challenger fitted on %d rows in %.1f s (%.1f s CPU)", name, challenger.kind, len(train),
             time.perf_counter() - started, time.process_time() - cpu_started)
    return model
