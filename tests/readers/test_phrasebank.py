"""Financial PhraseBank reader on a small CRLF / latin-1 fixture with one bad record of each kind."""

from pathlib import Path

import pytest

from fastadapt.readers.phrasebank import read_phrasebank
from fastadapt.readers.quarantine import RawInputError

FIXTURE = Path(__file__).parents[1] / "fixtures" / "readers" / "financial_phrasebank"
AGREEMENT_FILES = {66: "Sentences_66Agree.txt", 75: "Sentences_75Agree.txt", 100: "Sentences_AllAgree.txt"}


def load(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture
def files() -> dict[str, bytes]:
    return load(FIXTURE)


def test_fixture_has_the_real_quirks(files):
    main = files["Sentences_50Agree.txt"]
    assert main.count(b"\r\n") == main.count(b"\n") == 11
    with pytest.raises(UnicodeDecodeError):
        main.decode("utf-8")


def test_rows_quarantine_and_accounting(files):
    result = read_phrasebank(files, {"agreement_files": AGREEMENT_FILES}, "finance_sentiment")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (11, 8, 3)
    assert result.n_in == len(result.rows) + len(result.quarantine)
    assert result.quarantine[["line", "reason"]].values.tolist() == [
        [8, "wrong_column_count"], [9, "unknown_label"], [10, "empty_text"],
    ]
    assert result.quarantine["raw"].tolist()[0] == "Kone 's net sales in Helsinki were flat"
    rows = result.rows
    assert rows["row_id"].tolist() == list(range(8))
    assert rows["line"].tolist() == [1, 2, 3, 4, 5, 6, 7, 11]
    assert set(rows["origin"]) == {"train"} and set(rows["file"]) == {"Sentences_50Agree.txt"}
    assert str(rows["row_id"].dtype) == str(rows["agreement"].dtype) == "int64"


def test_text_is_decoded_as_latin1_and_split_at_the_last_at(files):
    rows = read_phrasebank(files, {}, "finance_sentiment").rows.set_index("line")
    assert rows.loc[11, "text"] == "Stora Enso opened a caf\u00e9 in Oulu ( \u00a35 mn ) ."
    assert rows.loc[7, "text"] == "Talentum lists its bonds at invest@nordic.fi as planned ."
    assert rows.loc[7, "label"] == "neutral"
    assert not rows["text"].str.endswith(("\r", " ")).any()


def test_agreement_is_the_highest_level_confirming_the_same_label(files):
    rows = read_phrasebank(files, {"agreement_files": AGREEMENT_FILES}, "finance_sentiment").rows
    assert dict(zip(rows["line"], rows["agreement"])) == {1: 66, 2: 50, 3: 100, 4: 66, 5: 50, 6: 75, 7: 50, 11: 75}


def test_without_agreement_files_every_row_is_at_50(files):
    rows = read_phrasebank({"Sentences_50Agree.txt": files["Sentences_50Agree.txt"]}, {}, "finance_sentiment").rows
    assert set(rows["agreement"]) == {50}


def test_lf_only_copy_reads_the_same(files):
    lf_only = {name: data.replace(b"\r\n", b"\n") for name, data in files.items()}
    options = {"agreement_files": AGREEMENT_FILES}
    crlf_rows = read_phrasebank(files, options, "finance_sentiment").rows
    lf_rows = read_phrasebank(lf_only, options, "finance_sentiment").rows
    assert crlf_rows.equals(lf_rows)


def test_undecodable_bytes_quarantine_only_their_record(files):
    result = read_phrasebank(files, {"encoding": "utf-8"}, "finance_sentiment")
    assert (len(result.rows), len(result.quarantine)) == (7, 4)
    undecodable = result.quarantine[result.quarantine["reason"] == "undecodable_bytes"]
    assert undecodable["line"].tolist() == [11]
    assert "caf\\xe9" in undecodable["raw"].iloc[0]


def test_missing_main_file_names_it_and_the_hint():
    with pytest.raises(RawInputError, match=r"'Sentences_50Agree.txt' is missing.*see SOURCE.md"):
        read_phrasebank({}, {"source_hint": "see SOURCE.md"}, "finance_sentiment")


def test_missing_agreement_file_is_an_error(files):
    del files["Sentences_AllAgree.txt"]
    with pytest.raises(RawInputError, match="Sentences_AllAgree.txt"):
        read_phrasebank(files, {"agreement_files": AGREEMENT_FILES}, "finance_sentiment")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"main_fle": "x.txt"}, r"unknown reader option.*main_fle.*allowed options.*main_file"),
        ({"agreement_files": {"all": "Sentences_AllAgree.txt"}}, r"agreement_files.*'all'.*51..100"),
        ({"encoding": "latin-9000"}, r"encoding.*latin-9000"),
        ({"labels": "positive"}, r"'labels' must be a non-empty list"),
    ],
)
def test_bad_options_are_named(files, options, message):
    with pytest.raises(RawInputError, match=message):
        read_phrasebank(files, options, "finance_sentiment")
