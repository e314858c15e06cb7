"""Every monitoring setting (`monitoring:` in conf/base/parameters_monitoring.yml), validated once.

`MonitoringSettings.from_params(params["monitoring"], where="monitoring")` checks the whole block:
each sub-block is built by its own settings class (`ScoringConfig`, `EntityConfig`, `SurgeConfig`,
`AlertSettings`, `DriftSettings`, `CheckSettings`, `ReportSettings`), whose field defaults are the
values of conf/base, so that leaving a key out runs what users run. A mistake raises `ConfigError`
naming `monitoring.<block>.<key>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self

from fastadapt.config import Checks, Settings, check_keys
from fastadapt.monitoring.check import CheckSettings
from fastadapt.monitoring.drift import DriftSettings
from fastadapt.monitoring.report import ReportSettings
from fastadapt.monitoring.scoring import EntityConfig, ScoringConfig
from fastadapt.monitoring.surge import AlertSettings, SurgeConfig

DEVICE_TAGS = ("auto", "cpu", "gpu")
# The sub-blocks and the class that validates each.
BLOCKS: dict[str, type[Settings]] = {
    "scoring": ScoringConfig, "entities": EntityConfig, "surge": SurgeConfig, "alerts": AlertSettings,
    "drift": DriftSettings, "check": CheckSettings, "report": ReportSettings,
}


@dataclass(frozen=True)
class MonitoringSettings(Settings):
    """The monitoring pipeline's settings: the models (catalog dataset names), their node tags
    (auto | cpu | gpu), the stream sources (None: all) and one settings object per sub-block."""

    model: str = "finance_sentiment.champion"
    ner_model: str | None = "ner.model.crf"
    model_tag: str = "auto"
    ner_tag: str = "auto"
    sources: list[str] | None = None
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    entities: EntityConfig = field(default_factory=EntityConfig)
    surge: SurgeConfig = field(default_factory=SurgeConfig)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    check: CheckSettings = field(default_factory=CheckSettings)
    report: ReportSettings = field(default_factory=ReportSettings)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = "monitoring") -> Self:
        """Validated settings; each sub-block through its own class (`ConfigError` names the key)."""
        values = check_keys(params, [f.name for f in fields(cls)], where)
        for name, block in BLOCKS.items():
            values[name] = block.from_params(values.get(name), f"{where}.{name}")
        settings = cls(**values)
        settings.validate(where)
        return settings

    def validate(self, where: str = "monitoring") -> None:
        check = Checks(self, where)
        check.text("model")
        check.text("ner_model", optional=True)
        check.choice("model_tag", DEVICE_TAGS)
        check.choice("ner_tag", DEVICE_TAGS)
        if self.sources is not None and (isinstance(self.sources, str) or not all(
                isinstance(source, str) for source in self.sources)):
            check.fail("sources", "allowed: a list of stream sources or null")
