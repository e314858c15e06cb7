"""AnswerSuggestionSettings: the `answer_suggestion:` block validated once, defaults equal to conf/base."""

from __future__ import annotations

import pytest
import yaml
from tests.conftest import REPO_ROOT

from fastadapt.config import ConfigError
from fastadapt.dialogue.settings import AnswerSuggestionSettings

BASE = yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_answer_suggestion.yml").read_text())[
    "answer_suggestion"]


def test_every_default_but_new_services_is_the_value_of_conf_base():
    settings = AnswerSuggestionSettings.from_params(BASE, where="answer_suggestion")
    defaults = AnswerSuggestionSettings()
    assert {k: v for k, v in vars(settings).items() if k != "new_services"} == {
        k: v for k, v in vars(defaults).items() if k != "new_services"}
    services = settings.service_settings()
    assert services.abstain_below == 0.45 and services.ks == (1, 5) and services.neighbours == settings.neighbours


@pytest.mark.parametrize(("block", "message"), [
    ({"top_n": 0}, "answer_suggestion.top_n is 0; allowed: an integer >= 1"),
    ({"bank_splits": "train"}, "answer_suggestion.bank_splits is 'train'; allowed: a non-empty list of split names"),
    ({"registered_model": ""}, "answer_suggestion.registered_model is ''; allowed: a non-empty string"),
    ({"neighbour": 3}, "answer_suggestion: unknown setting(s) ['neighbour']; allowed: "),
    ({"new_services": {**BASE["new_services"], "abstain_below": 2}}, "answer_suggestion.new_services.abstain_below"),
])
def test_a_mistake_is_one_line_naming_the_parameter(block, message):
    with pytest.raises(ConfigError) as error:
        AnswerSuggestionSettings.from_params({**BASE, **block}, where="answer_suggestion")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
