"""DomainConfig: typed domain settings whose errors name the parameter and the allowed values."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import make_project
from fastadapt.config import (
    Checks,
    ConfigError,
    DomainConfig,
    Settings,
    domain_configs,
    environment_label,
    project_parameters,
)
from fastadapt.readers import READERS


def test_text_classification_defaults():
    config = DomainConfig.from_params("my_task", {"kind": "text_classification"})
    assert config.name == "my_task"
    assert config.kind == "text_classification"
    assert config.reader == "labelled_csv"
    assert config.raw == "tasks.my_task"  # data/01_raw/tasks/my_task through the catalog factory
    assert config.split == {"method": "holdout_validation"}
    assert config.reader_options == {} and config.report_subsets == {}


def test_kind_defaults_to_text_classification():
    assert DomainConfig.from_params("t", {}) == DomainConfig.from_params("t", {"kind": "text_classification"})


def test_ner_defaults():
    config = DomainConfig.from_params("my_ner", {"kind": "ner"})
    assert (config.kind, config.reader, config.raw) == ("ner", "conll", "tasks.my_ner")
    assert config.split == {"method": "given"}


def test_explicit_settings_are_kept():
    params = {
        "kind": "text_classification",
        "raw": "financial_phrasebank",
        "reader": "phrasebank",
        "reader_options": {"main_file": "Sentences_50Agree.txt"},
        "split": {"method": "made", "test_size": 0.2, "validation_size": 0.125},
        "report_subsets": {"all_agree": "agreement == 100"},
    }
    config = DomainConfig.from_params("finance_sentiment", params)
    assert (config.raw, config.reader) == ("financial_phrasebank", "phrasebank")
    assert config.reader_options == params["reader_options"]
    assert config.split == params["split"]
    assert config.report_subsets == params["report_subsets"]
    config.reader_options["main_file"] = "changed"  # a copy: the parameters stay as loaded
    assert params["reader_options"]["main_file"] == "Sentences_50Agree.txt"


@pytest.mark.parametrize("empty", [None, {}])
def test_empty_blocks_fall_back_to_the_defaults(empty):
    config = DomainConfig.from_params("t", {"kind": "ner", "split": empty, "reader_options": empty})
    assert config.split == {"method": "given"} and config.reader_options == {}


def test_unknown_kind_names_the_parameter_and_the_kinds():
    with pytest.raises(ConfigError) as raised:
        DomainConfig.from_params("my_task", {"kind": "image_classification"})
    message = str(raised.value)
    assert "domains.my_task.kind" in message and "'image_classification'" in message
    assert "text_classification" in message and "ner" in message


def test_unknown_reader_names_the_parameter_and_the_readers():
    with pytest.raises(ConfigError) as raised:
        DomainConfig.from_params("my_task", {"reader": "csv"})
    message = str(raised.value)
    assert "domains.my_task.reader" in message and "'csv'" in message
    assert all(name in message for name in READERS)


def test_unknown_key_names_the_key_and_the_allowed_keys():
    with pytest.raises(ConfigError) as raised:
        DomainConfig.from_params("my_task", {"kind": "ner", "splits": {"method": "given"}, "readr": "conll"})
    message = str(raised.value)
    assert "domains.my_task" in message
    assert "'readr'" in message and "'splits'" in message
    for allowed in ("kind", "reader", "raw", "reader_options", "split", "report_subsets"):
        assert allowed in message


def test_a_domain_that_is_not_a_mapping():
    with pytest.raises(ConfigError, match=r"domains\.my_task must be a mapping"):
        DomainConfig.from_params("my_task", "text_classification")


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_domain_configs_validates_every_domain():
    configs = domain_configs({"domains": {"a": {}, "b": {"kind": "ner"}}})
    assert {name: config.kind for name, config in configs.items()} == {"a": "text_classification", "b": "ner"}
    with pytest.raises(ConfigError, match=r"domains\.b\.kind"):
        domain_configs({"domains": {"a": {}, "b": {"kind": "nre"}}})


@pytest.mark.parametrize("parameters", [{}, {"domains": None}, {"domains": {}}])
def test_domain_configs_needs_a_domains_block(parameters):
    with pytest.raises(ConfigError, match="domains"):
        domain_configs(parameters)


def test_project_parameters_read_the_project_and_its_environment(tmp_path, monkeypatch):
    """The registry builds pipelines from these, before any session exists."""
    project = make_project(tmp_path, {}, "seed: 7\ndomains:\n  my_task: {kind: text_classification}\n")
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    parameters = project_parameters()
    assert parameters["seed"] == 7
    assert list(domain_configs(parameters)) == ["my_task"]
    assert parameters["episodes"]["n_episodes"] == 100  # from the other conf/base parameter files
    assert project_parameters("full")["episodes"]["n_episodes"] == 600  # soft-merged over base
    assert project_parameters("full")["episodes"]["n_query"] == 10
    monkeypatch.setenv("KEDRO_ENV", "full")
    assert project_parameters()["episodes"]["n_episodes"] == 600


def test_the_shipped_configuration_is_valid():
    """conf/base (the repository's own project) gives valid domains, one of each kind at least."""
    configs = domain_configs(project_parameters("base"))
    assert {config.kind for config in configs.values()} == {"text_classification", "ner"}


@dataclass(frozen=True)
class _Example(Settings):
    size: int = 500
    rate: float = 0.1
    mode: str = "fast"

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        check.integer("size", 10)
        check.number("rate", 0, 1, strict_low=True)
        check.choice("mode", ("fast", "slow"))


def test_settings_defaults_live_on_the_fields():
    assert _Example.from_params(None, where="block") == _Example()
    assert _Example.from_params({"size": 20}, where="block").size == 20


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sise": 20}, r"block: unknown setting\(s\) \['sise'\]; allowed: \['size', 'rate', 'mode'\]"),
        ({"size": 5}, r"block.size is 5; allowed: an integer >= 10"),
        ({"size": True}, r"block.size is True; allowed: an integer >= 10"),
        ({"rate": 0}, r"block.rate is 0; allowed: a number > 0 and < 1"),
        ({"rate": float("nan")}, r"block.rate is nan; allowed: a number > 0 and < 1"),
        ({"mode": "quick"}, r"block.mode is 'quick'; allowed: \['fast', 'slow'\]"),
        ([1, 2], r"block must be a mapping of settings, got \[1, 2\]"),
    ],
)
def test_settings_errors_name_the_key_the_value_and_the_rule(params, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        _Example.from_params(params, where="block")


def test_reports_name_the_runs_environment_and_base_for_a_run_without_one():
    assert environment_label(None) == "base"
    assert environment_label("local") == "base"  # the default run environment: credentials only
    assert environment_label("full") == "full"
