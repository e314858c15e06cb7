"""The unlabelled pool: stripped, non-empty, distinct texts, first source wins, stable order."""

import pandas as pd
import pytest

from fastadapt.tasks.pool import unlabelled_pool


def test_pool_strips_drops_empties_and_deduplicates_across_sources():
    pool = unlabelled_pool(
        {
            "headlines": ["  Stocks rise ", "", "   ", None, float("nan"), "Bonds fall"],
            "tweets": ["stocks  RISE", "Oil up", "Bonds fall"],
        }
    )
    assert list(pool["text"]) == ["Stocks rise", "Bonds fall", "Oil up"]
    assert list(pool["source"]) == ["headlines", "headlines", "tweets"]
    assert list(pool.columns) == ["text", "source"]


def test_the_first_source_in_the_mapping_wins():
    pool = unlabelled_pool({"b": ["same text"], "a": ["Same text"]})
    assert pool.to_dict("records") == [{"text": "same text", "source": "b"}]


def test_same_inputs_give_the_same_pool():
    sources = {"a": [f"text {i % 7}" for i in range(30)], "b": (f"Text {i}" for i in range(10))}
    first = unlabelled_pool(sources)
    again = unlabelled_pool(
        {"a": [f"text {i % 7}" for i in range(30)], "b": [f"Text {i}" for i in range(10)]}
    )
    pd.testing.assert_frame_equal(first, again)
    assert len(first) == 10


def test_unordered_sources_and_non_text_are_refused():
    with pytest.raises(TypeError, match="'a'.*ordered"):
        unlabelled_pool({"a": {"x", "y"}})
    with pytest.raises(TypeError, match="'b' holds a int"):
        unlabelled_pool({"b": ["x", 3]})


def test_empty_sources_give_an_empty_table_with_the_columns():
    pool = unlabelled_pool({})
    assert list(pool.columns) == ["text", "source"]
    assert pool.empty


def test_pool_and_tokenizer_settings_defaults_are_conf_base_and_test_splits_are_refused():
    import yaml

    from fastadapt.config import ConfigError
    from fastadapt.tasks.pool import PoolSettings, WordPieceSettings
    from tests.conftest import REPO_ROOT

    base = REPO_ROOT / "conf" / "base"
    pool = yaml.safe_load((base / "parameters_unlabelled_pool.yml").read_text())["unlabelled_pool"]
    tokenizer = yaml.safe_load((base / "parameters_wordpiece_tokenizer.yml").read_text())["wordpiece_tokenizer"]
    assert PoolSettings.from_params(pool, where="unlabelled_pool") == PoolSettings()
    assert WordPieceSettings.from_params(tokenizer, where="wordpiece_tokenizer") == WordPieceSettings()
    with pytest.raises(ConfigError, match=r"^unlabelled_pool.domain_splits is \['train', 'test'\]; allowed"):
        PoolSettings.from_params({"domain_splits": ["train", "test"]}, where="unlabelled_pool")
