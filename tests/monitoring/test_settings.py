"""MonitoringSettings: the whole `monitoring:` block validated once, defaults equal to conf/base."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from tests.conftest import REPO_ROOT

from fastadapt.config import ConfigError
from fastadapt.monitoring.settings import BLOCKS, MonitoringSettings

BASE = yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_monitoring.yml").read_text())["monitoring"]


def test_every_default_is_the_value_of_conf_base():
    from_yaml, defaults = MonitoringSettings.from_params(BASE), MonitoringSettings()
    # The entity aliases are data (the project's list of companies), not a default.
    assert dataclasses.replace(from_yaml, entities=dataclasses.replace(from_yaml.entities, aliases={})) == defaults
    assert from_yaml.entities.aliases["Tesla"] == "TSLA" and defaults.entities.aliases == {}
    assert set(BLOCKS) | {"model", "ner_model", "model_tag", "ner_tag", "sources"} == set(BASE)


@pytest.mark.parametrize(("block", "message"), [
    ({"surge": {"alpha": 1.5}}, "monitoring.surge.alpha is 1.5; allowed: a number > 0.0 and < 1.0"),
    ({"surge": {"min_baseline_days": 30}}, "monitoring.surge.min_baseline_days is 30; allowed: an integer >= 0 and <= 28"),
    ({"alerts": {"headlines_per_alert": 0}}, "monitoring.alerts.headlines_per_alert is 0; allowed: an integer >= 1"),
    ({"check": {"date_from": "someday"}}, 'monitoring.check.date_from is \'someday\'; allowed: a date such as "2020-09-01", or null'),
    ({"report": {"max_timelines": -1}}, "monitoring.report.max_timelines is -1; allowed: an integer >= 0"),
    ({"drift": {"n_permutations": 0}}, "monitoring.drift.n_permutations is 0; allowed: an integer >= 1"),
    ({"model_tag": "tpu"}, "monitoring.model_tag is 'tpu'; allowed: ['auto', 'cpu', 'gpu']"),
    ({"scoring": {"label_map": ["a"]}}, "monitoring.scoring.label_map is ['a']; allowed: a mapping of model class to label, e.g. {Bearish: negative}"),
    ({"drift": {"embedder": None, "max_sample": 3}}, "monitoring.drift: unknown setting(s) ['max_sample']; allowed: "),
    ({"alert": {}}, "monitoring: unknown setting(s) ['alert']; allowed: "),
])
def test_a_mistake_is_one_line_naming_the_parameter(block, message):
    with pytest.raises(ConfigError) as error:
        MonitoringSettings.from_params({**BASE, **block})
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_yaml_keys_that_are_numbers_become_labels():
    settings = MonitoringSettings.from_params({"scoring": {"label_map": {0: "negative"}}})
    assert settings.scoring.reported("0") == "negative"
