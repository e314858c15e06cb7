"""k-shot sets: the exact section 2 drawing, errors, and section 4's greedy NER sampling."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from fastadapt.tasks.kshot import (
    KShotError,
    draw_kshot,
    draw_ner_kshot,
    entity_mentions,
    kshot_sets,
    ner_kshot_sets,
)

# Labels not in sorted order and row ids neither sorted nor contiguous, so the test sees whether
# the drawing sorts both.
TRAIN = pd.DataFrame(
    {
        "row_id": [40, 3, 17, 8, 25, 12, 31, 5, 60, 44, 21, 9],
        "label": [
            "card",
            "atm",
            "card",
            "atm",
            "card",
            "atm",
            "card",
            "atm",
            "atm",
            "card",
            "card",
            "atm",
        ],
    }
)


def test_draw_kshot_follows_the_protocol_exactly():
    # By hand: one rng(seed); class "atm" first, then "card"; indices into the sorted row ids.
    rng = np.random.default_rng(3)
    atm_ids = [3, 5, 8, 9, 12, 60]
    card_ids = [17, 21, 25, 31, 40, 44]
    expected = [atm_ids[i] for i in rng.choice(6, size=2, replace=False)]
    expected += [card_ids[i] for i in rng.choice(6, size=2, replace=False)]

    assert draw_kshot(TRAIN, k=2, seed=3) == expected
    assert draw_kshot(TRAIN.iloc[::-1], k=2, seed=3) == expected


def test_one_generator_is_shared_across_classes():
    rows = pd.DataFrame({"row_id": range(200), "label": ["a"] * 100 + ["b"] * 100})
    fresh = np.random.default_rng(0).choice(100, size=5, replace=False)
    drawn = draw_kshot(rows, k=5, seed=0)
    assert drawn[:5] == list(fresh)
    assert drawn[5:] != list(fresh + 100)  # b's draw continues the stream, not a fresh rng


def test_draws_are_reproducible_per_class_and_vary_with_the_seed():
    rows = pd.DataFrame({"row_id": range(300), "label": np.repeat(["x", "y", "z"], 100)})
    first = draw_kshot(rows, k=10, seed=1)
    assert first == draw_kshot(rows, k=10, seed=1)
    assert first != draw_kshot(rows, k=10, seed=2)
    assert len(set(first)) == 30
    labels = rows.set_index("row_id").loc[first, "label"]
    assert labels.value_counts().to_dict() == {"x": 10, "y": 10, "z": 10}


def test_a_class_with_fewer_than_k_rows_is_named_with_its_count():
    with pytest.raises(KShotError, match=r"class 'atm' has 6 rows.*k=7"):
        draw_kshot(TRAIN, k=7, seed=0)
    with pytest.raises(KShotError, match=r"class 'atm' has 5 rows") as caught:
        draw_kshot(TRAIN.iloc[:-1], k=6, seed=0)
    assert "card" not in str(caught.value)
    assert issubclass(KShotError, ValueError)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        draw_kshot(TRAIN, k=0, seed=0)


def test_kshot_sets_lists_every_k_and_seed():
    sets = kshot_sets(TRAIN, ks=[1, 2], seeds=range(3))
    assert list(sets.columns) == ["k", "seed", "row_id", "label"]
    assert sets.groupby(["k", "seed"]).size().to_dict() == {
        (1, 0): 2,
        (1, 1): 2,
        (1, 2): 2,
        (2, 0): 4,
        (2, 1): 4,
        (2, 2): 4,
    }
    one = sets[(sets["k"] == 2) & (sets["seed"] == 1)]
    assert list(one["row_id"]) == draw_kshot(TRAIN, 2, 1)
    assert list(one["label"]) == ["atm", "atm", "card", "card"]


def ner_rows(tag_sequences: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_id": range(len(tag_sequences)),
            "tokens": [["w"] * len(tags) for tags in tag_sequences],
            "tags": tag_sequences,
        }
    )


def test_entity_mentions_count_iob2_chunks():
    assert entity_mentions(["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]) == {"PER": 1, "LOC": 2}
    assert entity_mentions(["O", "I-ORG", "I-ORG", "I-PER"]) == {"ORG": 1, "PER": 1}
    assert entity_mentions(["O", "O"]) == {}
    with pytest.raises(ValueError, match="not an IOB2 tag: 'PER'"):
        entity_mentions(["PER"])


NER_TRAIN = ner_rows(
    [
        ["B-PER", "O"],
        ["O", "O"],
        ["B-LOC", "O", "B-LOC"],
        ["B-ORG", "I-ORG", "B-PER"],
        ["B-MISC"],
        ["O", "B-PER"],
        ["B-LOC", "B-ORG"],
        ["B-MISC", "O", "B-MISC"],
        ["B-ORG"],
        ["B-PER", "B-PER"],
    ]
)


def test_greedy_ner_sampling_follows_the_protocol():
    mentions = [entity_mentions(tags) for tags in NER_TRAIN["tags"]]
    for seed in range(5):
        for k in (1, 2):
            # By hand: visit rng(seed).permutation order; add a sentence holding a type under k.
            expected, reached = [], dict.fromkeys(["LOC", "MISC", "ORG", "PER"], 0)
            for position in np.random.default_rng(seed).permutation(len(NER_TRAIN)):
                if min(reached.values()) >= k:
                    break
                if any(mentions[position][t] and reached[t] < k for t in reached):
                    expected.append(int(position))
                    for t in reached:
                        reached[t] += mentions[position][t]
            drawn = draw_ner_kshot(NER_TRAIN, k=k, seed=seed)
            assert drawn == expected
            assert 1 not in drawn  # the all-O sentence never helps
            totals = sum((mentions[row_id] for row_id in drawn), Counter())
            assert all(totals[t] >= k for t in reached)


def test_greedy_sampling_skips_sentences_of_types_already_at_k():
    rows = ner_rows([["B-PER"], ["B-PER"], ["B-PER"], ["B-LOC"]])
    for seed in range(10):
        drawn = draw_ner_kshot(rows, k=1, seed=seed)
        assert len(drawn) == 2 and 3 in drawn


def test_entity_types_restrict_the_counting():
    for seed in range(5):
        drawn = draw_ner_kshot(NER_TRAIN, k=2, seed=seed, entity_types=["MISC"])
        assert 7 in drawn and set(drawn) <= {4, 7}  # only MISC sentences, 2 MISC mentions


def test_a_type_that_cannot_reach_k_is_named_with_its_total():
    with pytest.raises(KShotError, match=r"type 'MISC' has 3 mentions.*k=4"):
        draw_ner_kshot(NER_TRAIN, k=4, seed=0)
    with pytest.raises(KShotError, match=r"type 'DATE' has 0 mentions"):
        draw_ner_kshot(NER_TRAIN, k=1, seed=0, entity_types=["PER", "DATE"])


def test_ner_kshot_sets_lists_every_k_and_seed():
    sets = ner_kshot_sets(NER_TRAIN, ks=[1, 2], seeds=(seed for seed in [0, 1]))
    assert len(sets[sets["k"] == 2]["seed"].unique()) == 2
    assert list(sets.columns) == ["k", "seed", "row_id"]
    assert list(sets.loc[(sets["k"] == 2) & (sets["seed"] == 1), "row_id"]) == draw_ner_kshot(
        NER_TRAIN, 2, 1
    )


def test_kshot_settings_defaults_are_the_shipped_parameters():
    from pathlib import Path

    import yaml

    from fastadapt.tasks.kshot import KShotSettings

    shipped = yaml.safe_load((Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_kshot.yml")
                             .read_text())["kshot"]
    settings = KShotSettings.from_params(shipped, where="kshot")
    defaults = KShotSettings.from_params({}, where="kshot")
    assert [list(settings.ks), list(settings.seeds), list(settings.ner_ks)] == [
        list(defaults.ks), list(defaults.seeds), list(defaults.ner_ks)] == [[1, 5, 10, 20], [0, 1, 2, 3, 4], [1, 5, 10]]


@pytest.mark.parametrize(("params", "message"), [
    ({"ks": [1, 0]}, r"^kshot\.ks is \[1, 0\]; allowed: a non-empty list of integers >= 1$"),
    ({"seeds": []}, r"^kshot\.seeds is \[\]; allowed: a non-empty list of integers >= 0$"),
    ({"ner_ks": 5}, r"^kshot\.ner_ks is 5; allowed: a non-empty list"),
    ({"ks": [True]}, r"^kshot\.ks is \[True\]"),
    ({"k": [1]}, r"^kshot: unknown setting\(s\) \['k'\]"),
])
def test_bad_kshot_settings_name_the_parameter(params, message):
    from fastadapt.config import ConfigError
    from fastadapt.tasks.kshot import KShotSettings

    with pytest.raises(ConfigError, match=message):
        KShotSettings.from_params(params, where="kshot")
