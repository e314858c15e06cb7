"""evaluate_episodes over a fixed episodes table, and the 95 % interval."""

import numpy as np
import pandas as pd
import pytest

from fastadapt.meta import MetaLearner, ProtoNet, episode_summary, evaluate_episodes
from fastadapt.tasks.episodes import class_split_episodes

from tests.meta.conftest import toy_rows

ROWS = toy_rows()


class KeywordClassifier:
    """Predicts the support label whose texts share a word with the query (a fake adapter)."""

    def __init__(self, texts, labels):
        self.classes_ = sorted(set(labels))
        self.words = {c: set() for c in self.classes_}
        for text, label in zip(texts, labels):
            self.words[label] |= set(text.split())

    def predict_proba(self, texts):
        scores = np.array([[len(set(t.split()) & self.words[c]) for c in self.classes_] for t in texts], float)
        return scores / scores.sum(1, keepdims=True).clip(min=1)

    def predict(self, texts):
        return np.array([self.classes_[i] for i in self.predict_proba(texts).argmax(1)], dtype=object)


def table():
    classes = ["sport", "money", "weather"]
    return pd.concat([
        class_split_episodes(ROWS, classes, split_index=1, n_way=2, k_shot=2, n_query=3, n_episodes=4,
                             setting="2way_2shot"),
        class_split_episodes(ROWS, classes, split_index=2, n_way=None, k_shot=1, n_query=2, n_episodes=3,
                             setting="3way_1shot"),
    ], ignore_index=True)


def test_evaluate_episodes_scores_every_episode_with_its_own_support():
    seen = []

    def adapt(texts, labels):
        seen.append((list(texts), list(labels)))
        return KeywordClassifier(texts, labels)

    episodes = table()
    results = evaluate_episodes(adapt, episodes, ROWS, progress=False)
    assert list(results.columns) == ["setting", "split", "episode", "accuracy", "adaptation_seconds"]
    assert len(results) == 7 and len(seen) == 7
    assert results[["setting", "split", "episode"]].values.tolist()[:2] == [["2way_2shot", 1, 0], ["2way_2shot", 1, 1]]
    first = episodes[(episodes.setting == "2way_2shot") & (episodes.episode == 0) & (episodes.role == "support")]
    text = ROWS.set_index("row_id")["text"]
    assert seen[0] == (text.loc[first.row_id].tolist(), first.label.tolist())
    assert (results["adaptation_seconds"] >= 0).all()
    assert results["accuracy"].between(0, 1).all()


def test_evaluate_episodes_with_protonet_on_a_tiny_bert(tiny_backbone):
    protonet = ProtoNet(MetaLearner(tiny_backbone(), head="prototype"))
    results = evaluate_episodes(protonet.adapt, table(), ROWS, progress=False)
    assert len(results) == 7 and results["accuracy"].between(0, 1).all()


def test_evaluate_episodes_rejects_leaks_and_unknown_rows():
    episodes = table()
    one = episodes[(episodes.setting == "2way_2shot") & (episodes.episode == 0)]
    duplicated = pd.concat([one, one.assign(role="query")])
    with pytest.raises(ValueError, match="both support and query"):
        evaluate_episodes(KeywordClassifier, duplicated, ROWS, progress=False)
    with pytest.raises(ValueError, match="not in rows"):
        evaluate_episodes(KeywordClassifier, episodes, ROWS.iloc[:5], progress=False)


def test_episode_summary_uses_1_96_sd_over_sqrt_n_and_pools_the_splits():
    accuracy = [0.5, 0.7, 0.9, 0.7, 0.4, 0.6]
    results = pd.DataFrame({"method": ["m"] * 6 + ["n"], "setting": ["s"] * 7, "split": [1] * 4 + [2] * 2 + [1],
                            "episode": [0, 1, 2, 3, 0, 1, 0], "accuracy": accuracy + [0.3],
                            "adaptation_seconds": [1.0, 2.0, 3.0, 2.0, 5.0, 5.0, 9.0]})
    summary = episode_summary(results).set_index(["method", "split"])
    assert list(summary.index) == [("m", "01"), ("m", "02"), ("n", "01"), ("m", "mean"), ("n", "mean")]
    first, second = summary.loc[("m", "01")], summary.loc[("m", "02")]
    ci_first = 1.96 * np.std(accuracy[:4], ddof=1) / 2
    ci_second = 1.96 * np.std(accuracy[4:], ddof=1) / np.sqrt(2)
    assert first["episodes"] == 4 and first["accuracy"] == pytest.approx(0.7)
    assert first["ci95"] == pytest.approx(ci_first) and first["adaptation_seconds"] == 2.0
    assert second["ci95"] == pytest.approx(ci_second)
    pooled = summary.loc[("m", "mean")]
    assert pooled["episodes"] == 6 and pooled["accuracy"] == pytest.approx((0.7 + 0.5) / 2)
    assert pooled["ci95"] == pytest.approx(np.sqrt(ci_first ** 2 + ci_second ** 2) / 2)
    assert summary.loc[("n", "01"), "ci95"] == 0.0 and summary.loc[("n", "mean"), "accuracy"] == pytest.approx(0.3)

def kshot_table(pairs) -> pd.DataFrame:
    return pd.DataFrame([{"k": k, "seed": s, "row_id": 10 * k + s + i} for k, s in pairs for i in range(k)])


def test_kshot_draws_choose_sorted_sets_and_name_what_is_missing():
    from fastadapt.config import ConfigError
    from fastadapt.meta.evaluate import kshot_draws

    table = kshot_table([(5, 1), (1, 0), (5, 0), (1, 1)])
    assert [(k, s) for k, s, _ in kshot_draws(table, None, None, "x")] == [(1, 0), (1, 1), (5, 0), (5, 1)]
    assert kshot_draws(table, [5], [1], "x") == [(5, 1, [51, 52, 53, 54, 55])]
    with pytest.raises(ConfigError, match=r"meta_training\.curves asks for \(k, seed\) \[\(10, 0\)\]"):
        kshot_draws(table, [5, 10], [0], "meta_training.curves")
    with pytest.raises(ConfigError, match=r"broad\.evaluation asks for \(k, seed\) with k in None and seed in \[7\]"):
        kshot_draws(table, None, [7], "broad.evaluation")


def test_sampled_test_rows_are_a_fixed_sample_in_row_order():
    from fastadapt.meta.evaluate import sampled_test_rows

    splits = pd.DataFrame({"row_id": range(30, 0, -1), "split": ["test", "train"] * 15})
    assert sampled_test_rows(splits, None, 0)["row_id"].tolist() == list(range(2, 31, 2))
    sample = sampled_test_rows(splits, 4, 0)
    assert len(sample) == 4 and sample["row_id"].is_monotonic_increasing
    assert sample.equals(sampled_test_rows(splits, 4, 0)) and not sample.equals(sampled_test_rows(splits, 4, 1))


def test_select_episodes_keeps_the_settings_and_first_episodes_asked_for():
    from fastadapt.config import ConfigError
    from fastadapt.meta.evaluate import select_episodes
    from fastadapt.meta.plan import EvaluationSettings

    episodes = table()
    chosen = select_episodes(episodes, "01", EvaluationSettings(settings=["2way_2shot"], max_episodes=2))
    assert set(chosen["setting"]) == {"2way_2shot"} and sorted(chosen["episode"].unique()) == [0, 1]
    assert select_episodes(episodes, "1", EvaluationSettings()).equals(episodes[episodes["split"] == 1])
    with pytest.raises(ConfigError, match=r"meta_training\.class_splits has split 05"):
        select_episodes(episodes, "05", EvaluationSettings())
    with pytest.raises(ConfigError, match=r"meta_training\.evaluation\.settings names \['9way_9shot'\]"):
        select_episodes(episodes, "01", EvaluationSettings(settings=["9way_9shot"]))
