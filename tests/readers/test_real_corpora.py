"""The readers on the real raw files, checked against the counts in each corpus's SOURCE.md.

Reads data/01_raw/<corpus> when it exists, else ../shared/data/<corpus>; skips when neither does.
"""

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from fastadapt.readers.conll import read_conll
from fastadapt.readers.labelled_csv import read_labelled_csv
from fastadapt.readers.phrasebank import read_phrasebank
from fastadapt.readers.stream import read_cnbc_headlines, read_guardian_headlines, read_stockemotions

REPO_ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.real_data


def real_files(corpus: str) -> dict[str, bytes]:
    for folder in (REPO_ROOT / "data" / "01_raw" / corpus, REPO_ROOT.parent / "shared" / "data" / corpus):
        if folder.is_dir():
            return {
                path.relative_to(folder).as_posix(): path.read_bytes()
                for path in folder.rglob("*") if path.is_file()
            }
    pytest.skip(f"real corpus '{corpus}' not found in data/01_raw/ nor ../shared/data/")


def counts(series: pd.Series) -> dict:
    return {str(key): int(value) for key, value in series.value_counts().items()}


def test_financial_phrasebank():
    agreement_files = {66: "Sentences_66Agree.txt", 75: "Sentences_75Agree.txt", 100: "Sentences_AllAgree.txt"}
    options = {"agreement_files": agreement_files}
    result = read_phrasebank(real_files("financial_phrasebank"), options, "finance_sentiment")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (4846, 4846, 0)
    rows = result.rows
    assert counts(rows["label"]) == {"neutral": 2879, "positive": 1363, "negative": 604}
    assert (rows["agreement"] == 100).sum() == 2264
    # 75Agree has 3,453 lines, but one of its sentences ("Proha Plc ( Euronext :7327 ) ...") is in
    # 50Agree twice: both copies are confirmed at 75.
    assert (rows["agreement"] >= 75).sum() == 3454
    assert (rows["agreement"] >= 66).sum() == 4217
    assert (~rows["text"].map(str.isascii)).sum() == 111


def test_financial_tweets():
    options = {
        "splits": {"train": "sent_train.csv", "test": "sent_valid.csv"},
        "label_map": {"0": "Bearish", "1": "Bullish", "2": "Neutral"},
    }
    result = read_labelled_csv(real_files("financial_tweets"), options, "finance_tweets")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (11931, 11931, 0)
    by_origin = result.rows.groupby("origin")
    assert by_origin["label"].value_counts().to_dict() == {
        ("test", "Neutral"): 1566, ("test", "Bullish"): 475, ("test", "Bearish"): 347,
        ("train", "Neutral"): 6178, ("train", "Bullish"): 1923, ("train", "Bearish"): 1442,
    }
    assert by_origin["text"].apply(lambda texts: texts.str.contains("\n").sum()).to_dict() == {"test": 43, "train": 184}
    assert by_origin["line"].max().to_dict() == {"test": 2487, "train": 9939}


def test_banking77():
    options = {"label_column": "category", "labels_file": "categories.json"}
    result = read_labelled_csv(real_files("banking77"), options, "customer_intent")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (13083, 13083, 0)
    rows = result.rows
    assert counts(rows["origin"]) == {"train": 10003, "test": 3080}
    assert rows["label"].nunique() == 77
    assert set(rows.loc[rows["origin"] == "test", "label"].value_counts()) == {40}
    assert rows.loc[rows["origin"] == "train", "label"].value_counts().min() == 35
    assert "How do I unblock my PIN?" in set(rows["text"])


def test_conll2003():
    options = {
        "splits": {"train": "eng.train", "validation": "eng.testa", "test": "eng.testb"},
        "scheme": "iob1",
        "entity_types": ["PER", "ORG", "LOC", "MISC"],
    }
    result = read_conll(real_files("conll2003"), options, "ner")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (20744, 20744, 0)
    expected = {
        "train": (946, 14041, 203621, {"PER": 6600, "ORG": 6321, "LOC": 7140, "MISC": 3438}),
        "validation": (216, 3250, 51362, {"PER": 1842, "ORG": 1341, "LOC": 1837, "MISC": 922}),
        "test": (231, 3453, 46435, {"PER": 1617, "ORG": 1661, "LOC": 1668, "MISC": 702}),
    }
    for origin, (documents, sentences, tokens, entities) in expected.items():
        split = result.rows[result.rows["origin"] == origin]
        tags = [tag for sentence_tags in split["tags"] for tag in sentence_tags]
        assert split["doc_id"].nunique() == split["doc_id"].max() + 1 == documents
        assert len(split) == sentences
        assert sum(map(len, split["tokens"])) == len(tags) == tokens
        assert dict(Counter(tag[2:] for tag in tags if tag.startswith("B-"))) == entities


def test_conll2003_auto_scheme_detects_iob1():
    options = {"splits": {"test": "eng.testb"}}
    auto = read_conll(real_files("conll2003"), options, "ner").rows
    iob1 = read_conll(real_files("conll2003"), {**options, "scheme": "iob1"}, "ner").rows
    assert auto["tags"].tolist() == iob1["tags"].tolist()


def test_cnbc_headlines():
    result = read_cnbc_headlines(real_files("headlines"), {}, "headlines")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (3080, 2800, 280)
    assert counts(result.quarantine["reason"]) == {"empty_text": 280}
    published = result.rows["published_at"]
    assert (published.min(), published.max()) == (pd.Timestamp("2017-12-22 18:52"), pd.Timestamp("2020-07-17 19:51"))
    assert (published.dt.hour < 12).sum() == 302


def test_guardian_headlines():
    result = read_guardian_headlines(real_files("headlines"), {}, "headlines")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (17800, 17760, 40)
    assert counts(result.quarantine["reason"]) == {"unparseable_date": 40}
    assert counts(result.quarantine["raw"].str[:6]) == {"Jul-18": 20, "Apr-18": 20}
    published = result.rows["published_at"]
    assert (published.min(), published.max()) == (pd.Timestamp("2017-12-17"), pd.Timestamp("2020-07-18"))
    assert not result.rows["headline"].str.contains("\n").any()


def test_stockemotions():
    result = read_stockemotions(real_files("stockemotions"), {}, "stockemotions")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (10000, 10000, 0)
    rows = result.rows
    assert counts(rows["origin"]) == {"train": 8000, "validation": 1000, "test": 1000}
    assert rows.groupby("origin")["label"].value_counts().to_dict() == {
        ("test", "bullish"): 555, ("test", "bearish"): 445,
        ("train", "bullish"): 4382, ("train", "bearish"): 3618,
        ("validation", "bullish"): 537, ("validation", "bearish"): 463,
    }
    assert rows["ticker"].nunique() == 37 and rows["ticker"].notna().all()
    assert counts(rows.loc[rows["origin"] == "train", "emotion"])["optimism"] == 1299
    published = rows["published_at"]
    assert (published.min(), published.max()) == (pd.Timestamp("2020-01-01"), pd.Timestamp("2020-12-31"))
