"""The neural challenger: adapted with `fastadapt.adapt.adapt` on mixed, explicitly mapped sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fastadapt.adaptation import EncoderClassifier
from fastadapt.config import ConfigError
from fastadapt.datasets import ModelDirectoryDataset
from fastadapt.monitoring.retraining import (
    ChallengerSettings,
    RetrainingSettings,
    challenger_training_rows,
)
from fastadapt.pipelines.retraining.nodes import fit_challenger
from fastadapt.pipelines.retraining.pipeline import model_retraining
from fastadapt.adapt import AdaptStrategy

SPLITS = pd.DataFrame({"text": ["profits soar", "shares plunge", "sales flat", "record growth"],
                       "label": ["positive", "negative", "neutral", "positive"],
                       "split": ["train", "train", "train", "test"]})
NEW = pd.DataFrame({"text": ["stock to the moon", "sell everything now"], "label": ["positive", "negative"],
                    "origin": ["train", "train"]})
STREAM = pd.DataFrame({"headline": ["$X rallies", "$X dumps", "$X later"], "label": ["bullish", "bearish", "bearish"],
                       "source": "stockemotions",
                       "published_at": pd.to_datetime(["2020-01-02", "2020-01-03", "2020-10-01"])})
CHALLENGER = {
    "kind": "adaptation", "backbone": "minilm-l6", "num_threads": 1,
    "extra_sources": {"stockemotions": {"table": "news_stream", "source": "stockemotions", "text_column": "headline",
                                        "label_map": {"bearish": "negative", "bullish": "positive"},
                                        "date_until": "2020-09-01"}},
    "adapt": {"strategy": "finetune_all", "max_length": 16, "batch_size": 8,
              "training": {"max_steps": 2, "batch_size": 4, "lr": 1.0e-4, "seed": 0}},
}
RETRAINING = {"models": {"fin": {"domain": "fin", "current": "fin.model.tfidf", "labelled_folder": "new",
                                 "challenger": CHALLENGER}}}


def test_training_rows_mix_the_sources_and_leave_the_later_posts_out():
    challenger = ChallengerSettings.from_params(CHALLENGER, where="retraining.models.fin.challenger")
    rows = challenger_training_rows(NEW, SPLITS, challenger, {"news_stream": STREAM}, "fin")
    assert rows["text"].tolist() == ["profits soar", "shares plunge", "sales flat", "stock to the moon",
                                     "sell everything now", "$X rallies", "$X dumps"]
    assert rows["label"].tolist()[-2:] == ["positive", "negative"]


def test_the_pipeline_feeds_the_extra_tables_to_the_fit():
    fit = next(n for n in model_retraining("fin", RETRAINING["models"]["fin"]).nodes if "fit_challenger" in n.name)
    assert fit.inputs == ["retraining.fin.new_rows", "fin.splits", "params:retraining", "news_stream"]
    assert "gpu" in fit.tags


def test_a_neural_challenger_is_fitted_through_adapt_and_saved_as_a_directory(tmp_path):
    model = fit_challenger(NEW, SPLITS, RETRAINING, STREAM, name="fin")
    assert isinstance(model, EncoderClassifier) and model.strategy == AdaptStrategy.FINETUNE_ALL
    assert model.classes_ == ["negative", "neutral", "positive"] and model.training["steps"] == 2
    dataset = ModelDirectoryDataset(path=str(tmp_path / "challenger"))
    dataset.save(model)
    texts = ["shares plunge again", "profits soar again"]
    assert np.allclose(dataset.load().predict_proba(texts), model.predict_proba(texts), atol=1e-5)


def test_a_bad_adapt_strategy_names_the_parameter():
    retraining = {"models": {"fin": {**RETRAINING["models"]["fin"],
                                     "challenger": {**CHALLENGER, "adapt": {"strategy": "magic"}}}}}
    with pytest.raises(ConfigError, match=r"retraining\.models\.fin\.challenger\.adapt\.strategy is 'magic'"):
        fit_challenger(NEW, SPLITS, retraining, STREAM, name="fin")


@pytest.mark.parametrize(("retraining", "message"), [
    ({"margin": -0.1}, "retraining.margin is -0.1; allowed: a number >= 0.0"),
    ({"metric": "auc"}, "retraining.metric is 'auc'; allowed: ['macro_f1', 'accuracy', 'weighted_f1']"),
    ({"models": {"fin": {"domain": "fin"}}}, "retraining.models.fin needs `domain` (its splits) and `current`"),
    ({"models": {"fin": {**RETRAINING["models"]["fin"], "test_sets": ["old"]}}},
     "retraining.models.fin.test_sets is ('old',); allowed: a non-empty list of ['domain', 'new']"),
    ({"models": {"fin": {**RETRAINING["models"]["fin"], "challenger": {"kind": "svm"}}}},
     "retraining.models.fin.challenger.kind is 'svm'; allowed: ['tfidf', 'adaptation']"),
    ({"models": {"fin": {**RETRAINING["models"]["fin"], "challenger": {"num_thread": 1}}}},
     "retraining.models.fin.challenger: unknown setting(s) ['num_thread']"),
    ({"decision_log": "x.jsonl"}, "retraining.decision_log is no longer a parameter: the decision log is the catalog"),
])
def test_a_retraining_mistake_is_one_line_naming_the_parameter(retraining, message):
    with pytest.raises(ConfigError) as error:
        RetrainingSettings.from_params(retraining)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_retraining_defaults_are_the_projects():
    import yaml
    from tests.conftest import REPO_ROOT

    base = yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_retraining.yml").read_text())["retraining"]
    settings = RetrainingSettings.from_params(base)
    assert (settings.metric, settings.margin) == (RetrainingSettings().metric, RetrainingSettings().margin)
    assert settings.model("finance_sentiment").challenger.kind == "adaptation"
    assert settings.model("customer_intent").labelled_folder is None
