"""The broad meta-training distribution: a fold never reads its left-out domain, episode shapes
vary within their ranges, class names join the support set, and the plan is validated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fastadapt.config import ConfigError
from fastadapt.meta.broad import RELEASE, BroadPlan, broad_sources
from fastadapt.tasks.meta_episodes import label_text

DOMAINS = ["customer_intent", "finance_sentiment"]


def table(prefix: str, n_classes: int, per_class: int = 14) -> pd.DataFrame:
    rows = []
    for c in range(n_classes):
        for i in range(per_class):
            rows.append({"row_id": len(rows), "text": f"{prefix} text {c} {i}", "label": f"{prefix}_class_{c}",
                         "split": "train" if i < 10 else "validation"})
    return pd.DataFrame(rows)


def plan(**overrides) -> BroadPlan:
    params = {"folds": ["customer_intent"], "n_way": [2, 4], "k_shot": [1, 3], "label_names": True,
              "meta": {"n_query": 2, "k_shot": 2, "n_way": 3, "max_steps": 1}, **overrides}
    return BroadPlan.from_params(params, DOMAINS)


def tables() -> dict[str, pd.DataFrame]:
    return {"customer_intent": table("bank", 6), "finance_sentiment": table("fin", 3), "acid": table("acid", 5)}


def test_a_fold_never_reads_its_left_out_domain():
    broad = plan(same_data={"customer_intent": ["acid"]})
    pool = pd.DataFrame({"text": [f"bank word{i % 40} filler text" for i in range(400)] +
                                 [f"other word{i % 40} filler text" for i in range(400)],
                         "source": ["customer_intent"] * 400 + ["headlines"] * 400})
    train, valid, used = broad_sources(broad, "customer_intent", tables(), pool, "[MASK]")
    assert used == ["finance_sentiment", "smlmt"]
    for i in range(200):
        episode = train.sample(np.random.default_rng([0, i]))
        texts = episode.support_texts + episode.query_texts
        assert not any(t.startswith(("bank", "acid")) for t in texts), episode.source
    for i in range(20):
        episode = valid.sample(np.random.default_rng([1, i]))
        assert episode.source == "finance_sentiment"


def test_the_release_reads_every_source_and_shapes_vary():
    train, _, used = broad_sources(plan(weights={"smlmt": 0}), RELEASE, tables(), None, "[MASK]")
    assert used == ["acid", "customer_intent", "finance_sentiment"]
    shapes = set()
    for i in range(300):
        episode = train.sample(np.random.default_rng([2, i]))
        real = [i for i in episode.support_ids if i >= 0]
        k = len(real) // episode.n_way
        shapes.add((episode.source, episode.n_way, k))
        assert 2 <= episode.n_way <= 4 and 1 <= k <= 3
        named = [t for t, i in zip(episode.support_texts, episode.support_ids) if i < 0]
        assert named == [label_text(c) for c in episode.classes]  # one class-name text per class
        assert not set(episode.support_ids) & set(episode.query_ids)
    assert len({s[1] for s in shapes}) == 3 and len({s[2] for s in shapes}) == 3


def test_label_text_keeps_words_only():
    assert label_text("card_arrival") == "card arrival"
    assert label_text("Banks_1.CheckBalance") == "check balance"
    assert label_text("0") is None
    assert label_text("LABEL_3") is None


def test_the_plan_names_bad_settings():
    assert plan(folds=["nowhere", "customer_intent"]).folds == ("customer_intent",)
    with pytest.raises(ConfigError, match="nothing to train"):
        plan(folds=["nowhere"], release=False)
    with pytest.raises(ConfigError, match="n_way"):
        plan(n_way=[1, 3])
    with pytest.raises(ConfigError, match="varied N-way"):
        plan(algorithm="maml")
    assert BroadPlan.from_params(None, DOMAINS) is None


def test_a_fold_resumes_its_checkpoints_whatever_its_budget_and_only_its_own():
    base = plan(meta={"n_query": 2, "checkpoint_dir": "ckpt"}).checkpoint_dir("acid", ["smlmt"], "minilm-l6")
    assert base.startswith("ckpt/broad_acid-")
    assert plan(meta={"n_query": 2, "checkpoint_dir": "ckpt", "max_seconds": 9, "device": "cpu"}).checkpoint_dir(
        "acid", ["smlmt"], "minilm-l6") == base
    assert plan(meta={"n_query": 2, "checkpoint_dir": "ckpt", "outer_lr": 1e-3}).checkpoint_dir(
        "acid", ["smlmt"], "minilm-l6") != base
    assert plan(meta={"n_query": 2, "checkpoint_dir": "ckpt"}).checkpoint_dir("acid", ["smlmt", "x"], "minilm-l6") != base
    assert plan().checkpoint_dir("acid", ["smlmt"], "minilm-l6") is None


def test_the_nested_blocks_are_settings_with_their_defaults_and_errors():
    broad = plan()
    assert broad.evaluation.strategies == ["prototype", "finetune_all"] and broad.evaluation.pretrained == "minilm-l6"
    assert broad.smlmt.min_word_count == 30 and broad.smlmt.max_texts is None
    assert plan(evaluation={"ks": [5, 10], "seeds": [0]}).evaluation.ks == [5, 10]
    with pytest.raises(ConfigError, match=r"meta_training\.broad\.evaluation\.strategies is 'oracle'; allowed"):
        plan(evaluation={"strategies": ["oracle"]})
    with pytest.raises(ConfigError, match=r"meta_training\.broad\.smlmt: unknown setting\(s\) \['exclude_sources'\]"):
        plan(smlmt={"exclude_sources": ["x"]})
    with pytest.raises(ConfigError, match=r"meta_training\.broad\.weights\.smlmt is -1; allowed: a number >= 0"):
        plan(weights={"smlmt": -1})
    with pytest.raises(ConfigError, match=r"meta_training\.broad: unknown setting\(s\) \['fold'\]"):
        plan(fold=["customer_intent"])
