"""Episode sources for meta-training: no leaks, class splits respected, reproducible from seed."""

import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from fastadapt.tasks.kshot import entity_mentions
from fastadapt.tasks.meta_episodes import (
    LabelledEpisodeSource,
    MixtureSource,
    NerEpisodeSource,
    SmlmtSource,
    banking77_class_split,
    classes_with_enough_rows,
    keep_types,
    mask_word,
    pool_texts,
)


def labelled_rows(classes: dict[str, int]) -> pd.DataFrame:
    records = []
    for index, (label, count) in enumerate(classes.items()):
        records += [(100 * index + i, f"{label} text number {i}", label) for i in range(count)]
    return pd.DataFrame(records, columns=["row_id", "text", "label"]).sample(frac=1, random_state=0)


ROWS = labelled_rows({"a": 20, "b": 20, "c": 20, "d": 20, "held_out": 20})


def test_module_needs_no_torch():
    import importlib
    import subprocess

    code = "import sys, fastadapt.tasks.meta_episodes; print('torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"
    assert importlib.import_module("fastadapt.tasks.meta_episodes")


def test_labelled_episodes_have_disjoint_support_and_query_and_respect_classes():
    source = LabelledEpisodeSource(ROWS, classes=["a", "b", "c", "d"], n_way=3, k_shot=4, n_query=5)
    for seed in range(30):
        episode = source.sample(np.random.default_rng(seed))
        assert len(episode.classes) == 3 and list(episode.classes) == sorted(episode.classes)
        assert "held_out" not in episode.classes
        assert not set(episode.support_ids) & set(episode.query_ids)
        assert not set(episode.support_texts) & set(episode.query_texts)
        assert Counter(episode.support_labels) == {c: 4 for c in episode.classes}
        assert Counter(episode.query_labels) == {c: 5 for c in episode.classes}
        # texts belong to the labels they carry
        for text, label in zip(episode.support_texts + episode.query_texts,
                               episode.support_labels + episode.query_labels):
            assert text.startswith(f"{label} text")
        assert [episode.classes[i] for i in episode.targets("query")] == list(episode.query_labels)


def test_labelled_episodes_reproduce_from_seed_and_differ_across_seeds():
    source = LabelledEpisodeSource(ROWS, n_way=2, k_shot=1, n_query=2)
    first = source.sample(np.random.default_rng([0, 3]))
    assert first == source.sample(np.random.default_rng([0, 3]))
    assert any(first != source.sample(np.random.default_rng([0, s])) for s in range(4, 10))


def test_labelled_source_errors_name_the_problem():
    with pytest.raises(ValueError, match="classes not in the rows"):
        LabelledEpisodeSource(ROWS, classes=["a", "zzz"])
    with pytest.raises(ValueError, match="too few"):
        LabelledEpisodeSource(ROWS, classes=["a", "b"], n_way=2, k_shot=15, n_query=10)
    with pytest.raises(ValueError, match="n_way=6"):
        LabelledEpisodeSource(ROWS, n_way=6, k_shot=1, n_query=1)
    with pytest.raises(ValueError, match="k_shot"):
        LabelledEpisodeSource(ROWS, k_shot=0)


def test_mixture_follows_weights_and_names_the_source():
    a = LabelledEpisodeSource(ROWS, classes=["a", "b"], n_way=2, k_shot=1, n_query=1, name="first")
    b = LabelledEpisodeSource(ROWS, classes=["c", "d"], n_way=2, k_shot=1, n_query=1, name="second")
    mixture = MixtureSource({"first": a, "second": b}, {"first": 3.0, "second": 1.0})
    drawn = Counter(mixture.sample(np.random.default_rng([1, i])).source for i in range(400))
    assert 0.65 < drawn["first"] / 400 < 0.85
    never = MixtureSource({"first": a, "second": b}, {"first": 1.0, "second": 0.0})
    assert {never.sample(np.random.default_rng(i)).source for i in range(20)} == {"first"}
    assert mixture.sample(np.random.default_rng(5)) == mixture.sample(np.random.default_rng(5))
    with pytest.raises(ValueError, match="weights name"):
        MixtureSource({"first": a}, {"other": 1.0})
    with pytest.raises(ValueError, match="not all 0"):
        MixtureSource({"first": a}, {"first": 0.0})


SENTENCES = (
    [f"The bank raised rates in week {i}." for i in range(12)]
    + [f"A loan was approved, the loan officer said ({i})." for i in range(12)]
    + [f"Markets fell as stocks slid on day {i}." for i in range(12)]
    + ["Banknotes are not the same word as bank."] * 2
)


def test_mask_word_masks_whole_words_only():
    assert mask_word("Bank banknotes BANK.", "bank", "[MASK]") == "[MASK] banknotes [MASK]."


def test_smlmt_labels_are_the_masked_word():
    source = SmlmtSource(SENTENCES, n_way=3, k_shot=2, n_query=3, min_word_count=10, mask_token="[MASK]")
    assert {"bank", "loan", "stocks"} <= set(source.words)
    for seed in range(20):
        episode = source.sample(np.random.default_rng(seed))
        assert len(episode.classes) == 3
        for text, word, position in zip(episode.support_texts + episode.query_texts,
                                        episode.support_labels + episode.query_labels,
                                        episode.support_ids + episode.query_ids):
            original = SENTENCES[position]
            assert word in {w.lower() for w in original.replace(".", " ").replace(",", " ").split()}
            assert "[MASK]" in text
            assert text == mask_word(original, word, "[MASK]")
            assert word not in text.lower().replace("banknotes", "")
        for label in episode.classes:  # support and query sentences of one word are distinct
            support = {p for p, w in zip(episode.support_ids, episode.support_labels) if w == label}
            query = {p for p, w in zip(episode.query_ids, episode.query_labels) if w == label}
            assert not support & query
    assert source.sample(np.random.default_rng(7)) == source.sample(np.random.default_rng(7))


def test_smlmt_needs_frequent_enough_words():
    with pytest.raises(ValueError, match="min_word_count"):
        SmlmtSource(SENTENCES, n_way=3, k_shot=2, n_query=3, min_word_count=13)


def ner_sentences() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    records = []
    for row_id in range(200):
        tokens, tags = [], []
        for _ in range(6):
            kind = rng.choice(["O", "PER", "LOC", "ORG", "MISC"], p=[0.6, 0.1, 0.1, 0.1, 0.1])
            if kind == "O":
                tokens.append("w")
                tags.append("O")
            else:
                tokens += ["E", "e"]
                tags += [f"B-{kind}", f"I-{kind}"]
        records.append((row_id * 3, tokens, tags))
    return pd.DataFrame(records, columns=["row_id", "tokens", "tags"])


def test_ner_episodes_reach_k_mentions_with_a_disjoint_query_and_hide_held_out_types():
    source = NerEpisodeSource(ner_sentences(), k_shot=5, n_query=4, held_out_types=["MISC"])
    assert source.entity_types == ["LOC", "ORG", "PER"]
    for seed in range(10):
        episode = source.sample(np.random.default_rng(seed))
        support = sum((entity_mentions(tags) for tags in episode.support_tags), Counter())
        query = sum((entity_mentions(tags) for tags in episode.query_tags), Counter())
        assert all(support[t] >= 5 for t in episode.entity_types)
        assert all(query[t] >= 4 for t in episode.entity_types)
        assert "MISC" not in support and "MISC" not in query
        assert not set(episode.support_ids) & set(episode.query_ids)
        # greedy: removing the last support sentence leaves some type under k
        last_dropped = sum((entity_mentions(t) for t in episode.support_tags[:-1]), Counter())
        assert any(last_dropped[t] < 5 for t in episode.entity_types)
    assert source.sample(np.random.default_rng(3)) == source.sample(np.random.default_rng(3))


def test_ner_episodes_with_n_way_keep_only_their_types():
    source = NerEpisodeSource(ner_sentences(), k_shot=2, n_query=2, n_way=2)
    episode = source.sample(np.random.default_rng(1))
    assert len(episode.entity_types) == 2
    tagged = {tag[2:] for tags in episode.support_tags + episode.query_tags for tag in tags if tag != "O"}
    assert tagged <= set(episode.entity_types)
    assert keep_types(["B-PER", "I-PER", "O", "B-LOC"], ["LOC"]) == ["O", "O", "O", "B-LOC"]
    with pytest.raises(ValueError, match="both episode types and held out"):
        NerEpisodeSource(ner_sentences(), entity_types=["PER", "LOC"], held_out_types=["PER"])


def test_only_classes_with_enough_rows_are_kept_with_their_labels_as_text():
    rows = pd.DataFrame({"text": [f"t{i}" for i in range(9)], "label": [1, 1, 1, 2, 2, 3, 3, 3, 3]})
    kept, classes = classes_with_enough_rows(rows, 3)
    assert classes == ["1", "3"]
    assert kept["label"].tolist() == ["1", "1", "1", "3", "3", "3", "3"]
    assert classes_with_enough_rows(rows, 5)[1] == []


def test_pool_texts_leave_out_sources_and_sample_in_pool_order():
    pool = pd.DataFrame({"text": [f"text {i}" for i in range(20)], "source": ["bank", "news"] * 10})
    assert pool_texts(pool, ["bank"], None, 0) == [f"text {i}" for i in range(1, 20, 2)]
    sample = pool_texts(pool, [], 5, seed=3)
    assert len(sample) == 5 and sample == sorted(sample, key=lambda t: int(t.split()[1]))
    assert sample == pool_texts(pool, [], 5, seed=3) and sample != pool_texts(pool, [], 5, seed=4)
    assert pool_texts(pool, [], 50, 0) == pool["text"].tolist()


def test_banking77_class_split_reads_one_split_and_checks_disjointness():
    files = {"01/train.txt": b"a\nb\n", "01/valid.txt": b"c\n", "01/test.txt": b"d\ne\n",
             "02/train.txt": b"a\n", "02/valid.txt": b"a\n", "02/test.txt": b"b\n"}
    assert banking77_class_split(files, "01") == {"train": ["a", "b"], "valid": ["c"], "test": ["d", "e"]}
    assert banking77_class_split(files, 1) == banking77_class_split(files, "01")
    with pytest.raises(ValueError, match="share classes"):
        banking77_class_split(files, 2)
    with pytest.raises(ValueError, match=r"available splits: \['01', '02'\]"):
        banking77_class_split(files, "03")


def test_real_banking77_class_splits_are_disjoint_and_known():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "banking77_class_splits"
    if not folder.is_dir():
        pytest.skip("banking77_class_splits not linked into data/01_raw")
    files = {f"{p.parent.name}/{p.name}": p.read_bytes() for p in folder.glob("*/*.txt")}
    for split in range(1, 6):
        lists = banking77_class_split(files, split)
        assert [len(lists[p]) for p in ("train", "valid", "test")] == [25, 25, 27]
