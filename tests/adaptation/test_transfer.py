"""`fastadapt.adaptation.transfer`: the source tagger's training sentences from several NER corpora,
and the `meta_training.ner_source` settings (the tagger itself: tests/adaptation/test_nnshot.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from fastadapt.adaptation.transfer import SourceTaggerSettings, renamed_types, source_sentences
from fastadapt.config import ConfigError

CONLL = pd.DataFrame({"split": ["train", "train", "train", "test"],
                      "tokens": [["Ann", "visits", "Rome"], [], ["Acme", "Corp"], ["Bob"]],
                      "tags": [["B-PER", "O", "B-LOC"], [], ["B-ORG", "I-ORG"], ["B-PER"]]})
CROSSNER = pd.DataFrame({"split": ["train", "validation"],
                         "tokens": [["Turing", "proposed", "it"], ["x"]],
                         "tags": [["B-person", "O", "O"], ["O"]]})


def test_types_are_renamed_keeping_their_iob2_prefix():
    assert renamed_types([["B-PER", "I-PER", "O", "B-LOC"]], {"PER": "person"}) == [["B-person", "I-person", "O",
                                                                                       "B-LOC"]]
    assert renamed_types([["B-PER"]], {}) == [["B-PER"]]


def test_source_sentences_join_the_train_splits_renamed_and_repeated():
    tokens, tags, source = source_sentences({"ner": CONLL, "crossner_ai": CROSSNER}, {"PER": "person"},
                                            {"crossner_ai": 3})
    # Only non-empty train sentences; the small corpus three times; CoNLL's PER is CrossNER's person.
    assert tokens == [["Ann", "visits", "Rome"], ["Acme", "Corp"]] + [["Turing", "proposed", "it"]] * 3
    assert tags == [["B-person", "O", "B-LOC"], ["B-ORG", "I-ORG"]] + [["B-person", "O", "O"]] * 3
    assert source == "ner train + crossner_ai train x3"
    assert source_sentences({"ner": CONLL})[2] == "ner train"


@pytest.mark.parametrize("settings, message", [
    ({"sources": "crossner_ai"}, r"ner_source\.sources is 'crossner_ai'; allowed: a list of NER corpora.*or null"),
    ({"source_repeat": 0}, r"ner_source\.source_repeat is 0; allowed: an integer >= 1"),
    ({"type_names": {"PER": 3}}, r"ner_source\.type_names is \{'PER': 3\}; allowed: a mapping of entity type"),
])
def test_settings_errors_name_the_parameter(settings, message):
    base = {"domain": "ner", "adaptation": {"strategy": "full", "training": {"max_steps": 2}}}
    with pytest.raises(ConfigError, match=message):
        SourceTaggerSettings.from_params({**base, **settings}, "meta_training.ner_source")
    parsed = SourceTaggerSettings.from_params({**base, "sources": ["crossner_ai"]}, "meta_training.ner_source")
    assert parsed.sources == ("crossner_ai",) and parsed.source_repeat == 1 and dict(parsed.type_names) == {}
    assert SourceTaggerSettings.from_params(base, "meta_training.ner_source").sources is None  # every NER corpus
