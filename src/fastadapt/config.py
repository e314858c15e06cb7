"""Typed settings built once from Kedro parameters, with errors that name the parameter.

The pipeline registry also needs the list of domains before any session exists (pipelines are
generated from it), so `project_parameters` reads the parameters with the project's own config
loader settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from fastadapt.errors import UserInputError

TASK_KINDS = ("text_classification", "ner")


class ConfigError(UserInputError):
    """A parameter with a wrong or missing value; the message names it and the allowed values."""


@dataclass(frozen=True)
class DomainConfig:
    """One domain: where its raw files are, how to read and split them, and what to report."""

    name: str
    kind: str
    reader: str
    raw: str
    reader_options: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    report_subsets: dict[str, str] = field(default_factory=dict)
    unseen_classes: dict[str, Any] | None = None

    @classmethod
    def from_params(cls, name: str, params: Mapping[str, Any], block: str = "domains") -> "DomainConfig":
        from fastadapt.readers import READERS  # the registry of reader names

        where = f"{block}.{name}"
        if not isinstance(params, Mapping):
            raise ConfigError(f"{where} must be a mapping of settings, got {params!r}")
        known = {"kind", "reader", "raw", "reader_options", "split", "report_subsets", "unseen_classes"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; allowed: {sorted(known)}")
        kind = params.get("kind", "text_classification")
        if kind not in TASK_KINDS:
            raise ConfigError(f"{where}.kind is '{kind}'; allowed: {list(TASK_KINDS)}")
        default_reader = "labelled_csv" if kind == "text_classification" else "conll"
        reader = params.get("reader", default_reader)
        if reader not in READERS:
            raise ConfigError(f"{where}.reader is '{reader}'; allowed: {sorted(READERS)}")
        default_split = {"method": "holdout_validation"} if kind == "text_classification" else {
            "method": "given"
        }
        return cls(
            name=name,
            kind=kind,
            reader=reader,
            raw=params.get("raw", f"tasks.{name}"),
            reader_options=dict(params.get("reader_options") or {}),
            split=dict(params.get("split") or default_split),
            report_subsets=dict(params.get("report_subsets") or {}),
            unseen_classes=cls._unseen_classes(params.get("unseen_classes"), where),
        )

    @staticmethod
    def _unseen_classes(value: Any, where: str) -> dict[str, Any] | None:
        """`unseen_classes: {group_column: service, ks: [1, 5, 10]}` turns on unseen-class k-shot."""
        if value is None:
            return None
        if not isinstance(value, Mapping) or set(value) - {"group_column", "ks"}:
            raise ConfigError(f"{where}.unseen_classes must be a mapping with keys group_column and ks")
        return {"group_column": value.get("group_column"), "ks": list(value.get("ks", [1, 5, 10]))}


def domain_configs(parameters: Mapping[str, Any]) -> dict[str, DomainConfig]:
    """Every domain declared under `domains:` in the parameters, validated."""
    domains = parameters.get("domains")
    if not domains:
        raise ConfigError("parameters have no `domains:` block; see conf/base/parameters.yml")
    return {name: DomainConfig.from_params(name, spec) for name, spec in domains.items()}


def meta_source_configs(parameters: Mapping[str, Any]) -> dict[str, DomainConfig]:
    """The corpora under `meta_sources:`: read and split like domains, used only as meta-training
    episodes (no baselines, adaptation or evaluation of their own)."""
    sources = parameters.get("meta_sources") or {}
    if not isinstance(sources, Mapping):
        raise ConfigError(f"meta_sources must be a mapping of corpus name -> settings; got {sources!r}")
    domains = set(parameters.get("domains") or {})
    clash = sorted(domains & set(sources))
    if clash:
        raise ConfigError(f"meta_sources {clash} are also domains; give each corpus one name")
    return {name: DomainConfig.from_params(name, spec, block="meta_sources") for name, spec in sources.items()}


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """`override` merged into a copy of `base`, mappings key by key (as Kedro merges environments)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def project_root() -> Path:
    """The Kedro project folder: $KEDRO_PROJECT_PATH, else the source checkout, else the cwd."""
    if os.environ.get("KEDRO_PROJECT_PATH"):
        return Path(os.environ["KEDRO_PROJECT_PATH"])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "conf" / "base").is_dir():
        return checkout
    return Path.cwd()


_run_parameters: dict[str, Any] | None = None


def set_run_parameters(parameters: Mapping[str, Any] | None) -> None:
    """Record the parameters of the run being started (see `fastadapt.hooks`)."""
    global _run_parameters
    _run_parameters = dict(parameters) if parameters is not None else None


def project_parameters(env: str | None = None) -> dict[str, Any]:
    """Parameters as the run being started sees them (its environment and runtime `--params`),
    else as a run of environment `env` (default $KEDRO_ENV, else `local`) would."""
    if env is None and _run_parameters is not None:
        return dict(_run_parameters)
    from kedro.framework.project import settings

    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project_root() / settings.CONF_SOURCE),
        env=env or os.environ.get("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )
    return dict(loader["parameters"])
