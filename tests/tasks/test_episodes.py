"""Class-split episodes: the exact rng([s, i]) drawing, class split respected, no leaks."""

import numpy as np
import pandas as pd
import pytest

from fastadapt.tasks.episodes import class_split_episodes, parse_class_list, sample_episode


def intent_rows(rows_per_class: dict[str, int]) -> pd.DataFrame:
    """Rows of each class with interleaved, non-contiguous row ids, in shuffled order."""
    records = []
    for class_index, (label, count) in enumerate(rows_per_class.items()):
        records += [(10 * i + class_index, label) for i in range(count)]
    rows = pd.DataFrame(records, columns=["row_id", "label"])
    return rows.sample(frac=1.0, random_state=0).reset_index(drop=True)


ROWS = intent_rows(
    {"card_arrival": 20, "atm_support": 20, "top_up": 20, "age_limit": 20, "hidden_test_class": 20}
)
SPLIT_CLASSES = ["top_up", "card_arrival", "atm_support", "age_limit"]


def test_parse_class_list_reads_one_class_per_line():
    assert parse_class_list("card_arrival\n\n  top_up \r\natm_support\n") == [
        "card_arrival",
        "top_up",
        "atm_support",
    ]
    with pytest.raises(ValueError, match=r"more than once: \['top_up'\]"):
        parse_class_list("top_up\ncard_arrival\ntop_up\n")


def test_sample_episode_follows_the_protocol_exactly():
    rows_by_label = {
        "b": np.array([30, 10, 20, 40]),
        "a": np.array([3, 1, 2, 4, 5]),
        "c": np.array([7, 8, 9]),
    }
    episode = sample_episode(
        rows_by_label, n_way=2, k_shot=1, n_query=2, rng=np.random.default_rng([4, 2])
    )

    # By hand: classes from sorted ["a", "b", "c"], then per chosen class in sorted order.
    rng = np.random.default_rng([4, 2])
    chosen = [["a", "b", "c"][i] for i in sorted(rng.choice(3, size=2, replace=False))]
    sorted_ids = {"a": [1, 2, 3, 4, 5], "b": [10, 20, 30, 40], "c": [7, 8, 9]}
    expected = {
        label: [
            sorted_ids[label][i] for i in rng.choice(len(sorted_ids[label]), size=3, replace=False)
        ]
        for label in chosen
    }

    assert episode.labels == chosen
    for label, support, query in zip(episode.labels, episode.support, episode.query):
        assert list(support) == expected[label][:1]
        assert list(query) == expected[label][1:]


def test_support_and_query_are_disjoint_and_shaped():
    rows_by_label = {f"class_{i}": np.arange(100 * i, 100 * i + 15) for i in range(8)}
    rng = np.random.default_rng(0)
    for _ in range(50):
        episode = sample_episode(rows_by_label, n_way=5, k_shot=5, n_query=10, rng=rng)
        assert episode.support.shape == (5, 5) and episode.query.shape == (5, 10)
        assert episode.labels == sorted(episode.labels) and len(set(episode.labels)) == 5
        assert not set(episode.support.ravel()) & set(episode.query.ravel())
        for label, support, query in zip(episode.labels, episode.support, episode.query):
            assert set(support) | set(query) <= set(rows_by_label[label])


def test_all_classes_is_the_same_as_naming_their_number():
    rows_by_label = {f"c{i}": np.arange(10 * i, 10 * i + 10) for i in range(4)}
    every = sample_episode(rows_by_label, None, 2, 3, np.random.default_rng([1, 0]))
    four = sample_episode(rows_by_label, 4, 2, 3, np.random.default_rng([1, 0]))
    assert every.labels == ["c0", "c1", "c2", "c3"]
    np.testing.assert_array_equal(every.query, four.query)


def test_too_few_rows_or_classes_are_named():
    rows_by_label = {"big": np.arange(20), "small_class": np.arange(100, 105)}
    with pytest.raises(ValueError, match=r"class 'small_class' has 5 rows") as caught:
        sample_episode(rows_by_label, 2, 1, 10, np.random.default_rng(0))
    assert "'big'" not in str(caught.value)
    with pytest.raises(ValueError, match="n_way=3 needs between 1 and 2"):
        sample_episode(rows_by_label, 3, 1, 1, np.random.default_rng(0))


def test_class_split_episodes_only_use_the_split_classes():
    episodes = class_split_episodes(
        ROWS, SPLIT_CLASSES, 1, n_way=3, k_shot=2, n_query=4, n_episodes=30, setting="3w2s"
    )
    hidden_ids = set(ROWS.loc[ROWS["label"] == "hidden_test_class", "row_id"])
    assert set(episodes["label"]) <= set(SPLIT_CLASSES)
    assert not set(episodes["row_id"]) & hidden_ids
    labels = ROWS.set_index("row_id")["label"]
    assert (labels.loc[episodes["row_id"]].to_numpy() == episodes["label"].to_numpy()).all()


def test_class_split_episodes_have_the_setting_shape_and_no_query_in_support():
    episodes = class_split_episodes(
        ROWS, SPLIT_CLASSES, 2, n_way=3, k_shot=2, n_query=4, n_episodes=10, setting="3w2s"
    )
    assert list(episodes.columns) == ["setting", "split", "episode", "label", "row_id", "role"]
    assert set(episodes["setting"]) == {"3w2s"} and set(episodes["split"]) == {2}
    for _, episode in episodes.groupby("episode"):
        assert episode["label"].nunique() == 3
        assert episode.groupby(["label", "role"]).size().unstack().to_dict("list") == {
            "query": [4] * 3,
            "support": [2] * 3,
        }
        support = set(episode.loc[episode["role"] == "support", "row_id"])
        query = set(episode.loc[episode["role"] == "query", "row_id"])
        assert not support & query
        assert episode["row_id"].is_unique


def test_episode_i_of_split_s_depends_only_on_s_and_i():
    settings = {"n_way": 2, "k_shot": 1, "n_query": 3, "setting": "2w1s"}
    short = class_split_episodes(ROWS, SPLIT_CLASSES, 3, n_episodes=4, **settings)
    long = class_split_episodes(
        ROWS.iloc[::-1], list(reversed(SPLIT_CLASSES)), 3, n_episodes=9, **settings
    )
    pd.testing.assert_frame_equal(short, long[long["episode"] < 4].reset_index(drop=True))

    other_split = class_split_episodes(ROWS, SPLIT_CLASSES, 4, n_episodes=4, **settings)
    assert not short["row_id"].equals(other_split["row_id"])

    rows_by_label = {
        label: np.sort(ROWS.loc[ROWS["label"] == label, "row_id"].to_numpy())
        for label in SPLIT_CLASSES
    }
    third = sample_episode(rows_by_label, 2, 1, 3, np.random.default_rng([3, 2]))
    episode_2 = short[short["episode"] == 2]
    assert list(episode_2.loc[episode_2["role"] == "support", "row_id"]) == list(
        third.support.ravel()
    )
    assert list(episode_2.loc[episode_2["role"] == "query", "row_id"]) == list(third.query.ravel())


def test_a_split_class_without_enough_rows_is_named():
    with pytest.raises(ValueError, match=r"class 'missing_class' has 0 rows"):
        class_split_episodes(ROWS, ["top_up", "missing_class"], 1, 2, 1, 1, 1, "2w1s")
    with pytest.raises(ValueError, match=r"class 'top_up' has 20 rows"):
        class_split_episodes(ROWS, SPLIT_CLASSES, 1, 2, 5, 16, 1, "2w5s")


def test_episode_settings_defaults_are_conf_base_and_mistakes_name_the_parameter():
    import yaml

    from fastadapt.config import ConfigError
    from fastadapt.tasks.episodes import EpisodeSettings
    from tests.conftest import REPO_ROOT

    base = yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_episodes.yml").read_text())["episodes"]
    assert EpisodeSettings.from_params(base, where="episodes") == EpisodeSettings()
    assert EpisodeSettings().draws == [("5way_1shot", 5, 1), ("5way_5shot", 5, 5), ("27way_5shot", None, 5)]
    with pytest.raises(ConfigError, match=r"^episodes.n_query is 0; allowed: an integer >= 1$"):
        EpisodeSettings.from_params({"n_query": 0}, where="episodes")
    with pytest.raises(ConfigError, match=r"^episodes.settings is .*; 1way: allowed: \{n_way: an integer >= 2"):
        EpisodeSettings.from_params({"settings": {"1way": {"n_way": 1, "k_shot": 1}}}, where="episodes")
