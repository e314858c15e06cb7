"""Typed settings built once from Kedro parameters, with errors that name the parameter.

The one way to build validated settings from a parameter block: a dataclass that also inherits
`Settings`. `from_params(params, where)` refuses keys that are not fields, builds the object (the
field defaults are the only defaults, so code and YAML cannot disagree about them) and calls
`validate(where)`, which checks values through `Checks`. Every mistake raises `ConfigError` with
one line naming `<where>.<key>`, the value and what is allowed; the CLI prints that line instead
of a traceback.

    @dataclass(frozen=True)
    class DriftSettings(Settings):
        reference_size: int = 500

        def validate(self, where: str) -> None:
            Checks(self, where).integer("reference_size", 10)

    DriftSettings.from_params(params["monitoring"]["drift"], where="monitoring.drift")

The pipeline registry also needs the list of domains before any session exists (pipelines are
generated from it), so `project_parameters` reads the parameters with the project's own config
loader settings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, NoReturn, Self

from fastadapt.errors import UserInputError

TASK_KINDS = ("text_classification", "ner")
BASE_ENVIRONMENT = "base"


class ConfigError(UserInputError):
    """A parameter with a wrong or missing value; the message names it and the allowed values."""


def check_keys(params: Any, allowed: Sequence[str], where: str) -> dict[str, Any]:
    """`params` as a dict, or `ConfigError` if it is not a mapping or has keys outside `allowed`."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where} must be a mapping of settings, got {params!r}")
    unknown = sorted(str(key) for key in set(params) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; allowed: {list(allowed)}")
    return dict(params)


def is_number(value: Any) -> bool:
    """A finite int or float; `True` / `False` are not numbers here (YAML `yes` is a mistake)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Checks:
    """Value checks on one settings object; each failure names `<where>.<key>` and the rule."""

    def __init__(self, settings: Any, where: str) -> None:
        self.settings = settings
        self.where = where

    def fail(self, key: str, rule: str) -> NoReturn:
        raise ConfigError(f"{self.where}.{key} is {getattr(self.settings, key)!r}; {rule}")

    def integer(self, key: str, minimum: int, maximum: int | None = None, optional: bool = False) -> None:
        value = getattr(self.settings, key)
        if value is None and optional:
            return
        if (isinstance(value, bool) or not isinstance(value, int) or value < minimum
                or (maximum is not None and value > maximum)):
            bound = f">= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
            self.fail(key, f"allowed: an integer {bound}" + (" or null" if optional else ""))

    def number(self, key: str, low: float, high: float | None = None, optional: bool = False,
               strict_low: bool = False, strict_high: bool = True) -> None:
        """A number in [low, high) by default; `strict_low` makes it (low, ...; `strict_high=False` ..., high]."""
        value = getattr(self.settings, key)
        if value is None and optional:
            return
        ok = is_number(value) and (value > low if strict_low else value >= low)
        ok = ok and (high is None or (value < high if strict_high else value <= high))
        if not ok:
            bound = f"> {low}" if strict_low else f">= {low}"
            if high is not None:
                bound += f" and {'<' if strict_high else '<='} {high}"
            self.fail(key, f"allowed: a number {bound}" + (" or null" if optional else ""))

    def integers(self, key: str, minimum: int, optional: bool = False) -> None:
        """A non-empty list of integers >= `minimum` (or null when `optional`)."""
        value = getattr(self.settings, key)
        if value is None and optional:
            return
        if not isinstance(value, (list, tuple)) or not value or any(
                isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in value):
            self.fail(key, f"allowed: a non-empty list of integers >= {minimum}" + (" or null" if optional else ""))

    def choice(self, key: str, allowed: Sequence[Any]) -> None:
        if getattr(self.settings, key) not in allowed:
            self.fail(key, f"allowed: {list(allowed)}")

    def boolean(self, key: str) -> None:
        if not isinstance(getattr(self.settings, key), bool):
            self.fail(key, "allowed: true or false")

    def text(self, key: str, optional: bool = False) -> None:
        value = getattr(self.settings, key)
        if value is None and optional:
            return
        if not isinstance(value, str) or not value:
            self.fail(key, "allowed: a non-empty string" + (" or null" if optional else ""))

    def device(self, key: str = "device") -> None:
        # Imported here so that settings without a device never import torch.
        from fastadapt.models.encoder import resolve_device

        value = getattr(self.settings, key)
        if not isinstance(value, str):
            self.fail(key, "allowed: auto, cpu or cuda[:N]")
        try:
            resolve_device(value)
        except ValueError:
            self.fail(key, "allowed: auto, cpu or cuda[:N]")


class Settings:
    """Base of the project's settings dataclasses: `from_params` then `validate`.

    A class whose block must be present names its parameter file in `REQUIRED_IN`; an empty or
    missing block then stops with a line saying where the block belongs.
    """

    REQUIRED_IN: ClassVar[str | None] = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str) -> Self:
        """Validated settings from a parameter block; a wrong key or value raises `ConfigError`."""
        if cls.REQUIRED_IN is not None and not params:
            raise ConfigError(f"parameters have no `{where}:` block; see {cls.REQUIRED_IN}")
        values = check_keys(params, [f.name for f in fields(cls)], where)  # type: ignore[arg-type]
        settings = cls(**values)
        settings.validate(where)
        return settings

    def validate(self, where: str) -> None:
        """Check the values (and fill defaults derived from other fields); override per class."""


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
    def from_params(cls, name: str, params: Mapping[str, Any], block: str = "domains") -> DomainConfig:
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


def environment_label(env: str | None) -> str:
    """The configuration a run used, as its reports name it: its `--env`, or `base` for a run
    without one (the default run environment, `local`, holds only credentials and is not
    committed)."""
    from fastadapt import settings

    if env is None or env == settings.CONFIG_LOADER_ARGS.get("default_run_env"):
        return BASE_ENVIRONMENT
    return env


def set_run_parameters(parameters: Mapping[str, Any] | None) -> None:
    """Record the parameters of the run being started (see `fastadapt.hooks`)."""
    global _run_parameters
    _run_parameters = dict(parameters) if parameters is not None else None


def project_parameters(env: str | None = None) -> dict[str, Any]:
    """Parameters as the run being started sees them (its environment and runtime `--params`),
    else as a run of environment `env` (default $KEDRO_ENV, else `local`) would."""
    if env is None and _run_parameters is not None:
        return dict(_run_parameters)
    # The project's own settings module, not `kedro.framework.project.settings`: outside a
    # configured project (a test, a script) that one holds Kedro's defaults (destructive merge).
    from fastadapt import settings

    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project_root() / getattr(settings, "CONF_SOURCE", "conf")),
        env=env or os.environ.get("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )
    return dict(loader["parameters"])
