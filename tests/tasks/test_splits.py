"""Splits: spec validation, the made / holdout / given methods, stratification, reproducibility."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from fastadapt.config import ConfigError
from fastadapt.tasks.splits import SplitSpec, assign_splits

PHRASEBANK = SplitSpec("made", test_size=0.2, validation_size=0.125)


def sentiment_rows(
    counts: dict[str, int], origin: str = "train", first_id: int = 0
) -> pd.DataFrame:
    labels = [label for label, count in counts.items() for _ in range(count)]
    row_ids = np.arange(first_id, first_id + len(labels))
    return pd.DataFrame(
        {"row_id": row_ids, "text": [f"t{i}" for i in row_ids], "label": labels, "origin": origin}
    )


def test_made_split_has_phrasebank_proportions_and_is_stratified():
    rows = sentiment_rows({"negative": 60, "neutral": 280, "positive": 140})
    split = assign_splits(rows, PHRASEBANK)
    assert split["split"].value_counts().to_dict() == {"train": 336, "test": 96, "validation": 48}
    per_class = pd.crosstab(split["label"], split["split"])
    for label, total in {"negative": 60, "neutral": 280, "positive": 140}.items():
        assert abs(per_class.at[label, "test"] - 0.2 * total) <= 1
        assert abs(per_class.at[label, "validation"] - 0.1 * total) <= 1


def test_made_split_is_sklearn_on_rows_sorted_by_row_id():
    rows = sentiment_rows({"a": 30, "b": 20, "c": 10})
    ids, labels = rows["row_id"].to_numpy(), rows["label"].to_numpy()
    rest, test, rest_labels, _ = train_test_split(
        ids, labels, test_size=0.2, random_state=42, stratify=labels
    )
    _, validation = train_test_split(rest, test_size=0.125, random_state=42, stratify=rest_labels)

    shuffled = rows.sample(frac=1.0, random_state=3)
    split = assign_splits(shuffled, PHRASEBANK)
    assert list(split["row_id"]) == sorted(rows["row_id"])
    assert sorted(split.loc[split["split"] == "test", "row_id"]) == sorted(test)
    assert sorted(split.loc[split["split"] == "validation", "row_id"]) == sorted(validation)


def test_made_split_depends_on_the_seed_and_not_on_the_call():
    rows = sentiment_rows({"a": 40, "b": 40})
    first = assign_splits(rows, PHRASEBANK)
    pd.testing.assert_frame_equal(first, assign_splits(rows, PHRASEBANK))
    other_seed = assign_splits(rows, SplitSpec("made", validation_size=0.125, seed=7))
    assert not first["split"].equals(other_seed["split"])


def test_every_row_is_in_exactly_one_split():
    rows = sentiment_rows({"a": 25, "b": 25})
    split = assign_splits(rows, PHRASEBANK)
    assert len(split) == len(rows)
    assert split["row_id"].is_unique
    assert set(split["split"]) == {"train", "validation", "test"}


def test_holdout_validation_keeps_the_official_test_and_stratifies_validation():
    rows = pd.concat(
        [
            sentiment_rows({"a": 50, "b": 30}),
            sentiment_rows({"a": 5, "b": 5}, origin="test", first_id=80),
        ],
        ignore_index=True,
    )
    split = assign_splits(rows, SplitSpec("holdout_validation"))
    assert (split.loc[split["origin"] == "test", "split"] == "test").all()
    train_origin = split[split["origin"] == "train"]
    assert train_origin["split"].value_counts().to_dict() == {"train": 72, "validation": 8}
    validation_labels = train_origin.loc[train_origin["split"] == "validation", "label"]
    assert validation_labels.value_counts().to_dict() == {"a": 5, "b": 3}


def test_holdout_validation_with_an_origin_map_for_a_validation_file_used_as_test():
    rows = pd.concat(
        [
            sentiment_rows({"a": 20, "b": 20}),
            sentiment_rows({"a": 3}, origin="validation", first_id=40),
        ],
        ignore_index=True,
    )
    spec = SplitSpec("holdout_validation", origin_map={"train": "train", "validation": "test"})
    split = assign_splits(rows, spec)
    assert list(split.loc[split["origin"] == "validation", "split"]) == ["test"] * 3
    with pytest.raises(ValueError, match=r"origin\(s\) \['validation'\] have no split"):
        assign_splits(rows, SplitSpec("holdout_validation"))


def test_given_maps_origins_and_needs_no_labels():
    ner = pd.DataFrame(
        {
            "row_id": [2, 0, 1, 3],
            "tokens": [["a"], ["b"], ["c"], ["d"]],
            "tags": [["O"], ["O"], ["O"], ["O"]],
            "origin": ["validation", "train", "train", "test"],
        }
    )
    split = assign_splits(ner, SplitSpec("given"))
    assert list(split["split"]) == ["train", "train", "validation", "test"]
    renamed = ner.assign(origin=["dev", "train", "train", "test"])
    spec = SplitSpec("given", origin_map={"train": "train", "dev": "validation", "test": "test"})
    assert list(assign_splits(renamed, spec)["split"]) == ["train", "train", "validation", "test"]


def test_a_class_too_small_to_stratify_is_named():
    rows = sentiment_rows({"common": 40, "rare_class": 1})
    with pytest.raises(ValueError, match="rare_class"):
        assign_splits(rows, PHRASEBANK)


def test_a_class_too_small_for_the_second_draw_is_named():
    rows = sentiment_rows({"common": 10, "pair_class": 2})
    half_for_test = SplitSpec("made", test_size=0.5, validation_size=0.125)
    with pytest.raises(ValueError, match="validation split.*'pair_class': 1"):
        assign_splits(rows, half_for_test)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"method": "random"},
            r"^domains\.pb\.split\.method is 'random'; allowed: \['made', 'holdout_validation', 'given'\]$",
        ),
        ({"method": "made", "test_size": 0}, r"^domains\.pb\.split\.test_size is 0; allowed: a number > 0 and < 1$"),
        (
            {"method": "made", "validation_size": 1.5},
            r"^domains\.pb\.split\.validation_size is 1\.5; allowed: a number > 0 and < 1$",
        ),
        ({"method": "made", "seed": -1}, r"^domains\.pb\.split\.seed is -1; allowed: an integer >= 0$"),
        ({"method": "made", "seed": 1.5}, r"^domains\.pb\.split\.seed is 1\.5; allowed: an integer >= 0$"),
        (
            {"method": "made", "origin_map": {"train": "train"}},
            r"domains\.pb\.split\.origin_map is \{'train': 'train'\}; not used by method 'made'",
        ),
        (
            {"method": "given", "origin_map": {"dev": "valid"}},
            r"domains\.pb\.split\.origin_map maps \{'dev': 'valid'\}; .* must be in \['train', 'validation', 'test'\]",
        ),
        (
            {"method": "holdout_validation", "origin_map": {"dev": "validation"}},
            r"must be in \['train', 'test'\]",
        ),
        ({"method": "given", "origin_map": ["train"]}, r"origin_map is \['train'\]; allowed: a mapping"),
        ({"method": "made", "tests_size": 0.2}, r"^domains\.pb\.split: unknown setting\(s\) \['tests_size'\]"),
        ({"test_size": 0.2}, r"^domains\.pb\.split\.method is None; allowed: \['made'"),
    ],
)
def test_bad_params_name_the_parameter_and_allowed_values(params, message):
    with pytest.raises(ConfigError, match=message):
        SplitSpec.from_params(params, where="domains.pb.split")


def test_from_params_builds_the_spec():
    spec = SplitSpec.from_params(
        {"method": "made", "test_size": 0.2, "validation_size": 0.125, "seed": 42}, where="split"
    )
    assert spec == PHRASEBANK
