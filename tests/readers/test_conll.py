"""CoNLL reader on small fixtures: CoNLL-2003 style IOB1 and a user's tab-separated IOB2 folder."""

from pathlib import Path

import pytest

from fastadapt.readers.conll import iob1_to_iob2, read_conll
from fastadapt.readers.quarantine import RawInputError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "readers"
CONLL2003 = {"splits": {"train": "eng.train", "test": "eng.testb"}, "scheme": "iob1"}


def load(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize(
    ("iob1", "iob2"),
    [
        (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),
        (["I-LOC", "B-LOC", "I-LOC"], ["B-LOC", "B-LOC", "I-LOC"]),
        (["O", "B-MISC", "I-MISC"], ["O", "B-MISC", "I-MISC"]),
        (["I-ORG", "I-PER"], ["B-ORG", "B-PER"]),
        ([], []),
    ],
)
def test_iob1_to_iob2(iob1, iob2):
    assert iob1_to_iob2(iob1) == iob2


def test_conll2003_sentences_documents_and_iob2_tags():
    result = read_conll(load(FIXTURES / "conll2003"), CONLL2003, "ner")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (9, 7, 2)
    assert result.n_in == len(result.rows) + len(result.quarantine)
    rows = result.rows
    assert rows["row_id"].tolist() == list(range(7))
    assert rows[["origin", "doc_id", "sent_id", "line"]].values.tolist() == [
        ["train", 0, 0, 3], ["train", 0, 1, 9], ["train", 0, 2, 13], ["train", 1, 0, 18], ["train", 1, 3, 35],
        ["test", 0, 0, 3], ["test", 1, 0, 13],
    ]
    talks = rows.iloc[3]
    assert talks["tokens"] == ["Talks", "between", "Israel", "Syria", '"', "Atlanta", "Olympics", '"', "resume"]
    assert talks["tags"] == ["O", "O", "B-LOC", "B-LOC", "O", "B-MISC", "I-MISC", "O", "O"]
    assert rows.iloc[0]["tags"] == ["B-ORG", "O", "B-MISC", "O", "O"]
    assert rows.iloc[4]["tokens"] == ["Reuters", "Holdings"]


def test_a_bad_line_quarantines_its_whole_sentence():
    quarantine = read_conll(load(FIXTURES / "conll2003"), CONLL2003, "ner").quarantine
    assert quarantine[["file", "line", "reason"]].values.tolist() == [
        ["eng.train", 28, "wrong_column_count"], ["eng.train", 32, "unknown_tag"],
    ]
    assert quarantine["raw"].iloc[1] == "Bad NNP I-NP B_PER\ntag NN I-NP O"


def test_auto_scheme_detects_iob1():
    options = {**CONLL2003, "scheme": "auto"}
    auto = read_conll(load(FIXTURES / "conll2003"), options, "ner").rows
    assert auto["tags"].tolist() == read_conll(load(FIXTURES / "conll2003"), CONLL2003, "ner").rows["tags"].tolist()


def test_entity_types_outside_the_list_are_unknown_tags():
    options = {**CONLL2003, "entity_types": ["PER", "ORG", "LOC"]}
    quarantine = read_conll(load(FIXTURES / "conll2003"), options, "ner").quarantine
    assert quarantine[["line", "reason"]].values.tolist() == [
        [3, "unknown_tag"], [18, "unknown_tag"], [28, "wrong_column_count"], [32, "unknown_tag"],
    ]


def test_generic_iob2_folder_quarantines_invalid_iob2_and_undecodable_bytes():
    result = read_conll(load(FIXTURES / "ner_task"), {"scheme": "iob2"}, "my_ner")
    assert (result.n_in, len(result.rows), len(result.quarantine)) == (5, 3, 2)
    assert result.quarantine[["file", "line", "reason"]].values.tolist() == [
        ["train.conll", 11, "undecodable_bytes"], ["test.conll", 1, "invalid_iob2"],
    ]
    assert "M\\xfcnchen" in result.quarantine["raw"].iloc[0]
    assert result.rows[["origin", "doc_id", "sent_id", "line"]].values.tolist() == [
        ["train", 0, 0, 1], ["train", 0, 1, 6], ["test", 0, 1, 4],
    ]
    assert result.rows["tokens"].iloc[2] == ["Bob", "Smith", "of", "IBM"]
    assert result.rows["tags"].iloc[2] == ["B-PER", "I-PER", "O", "B-ORG"]


def test_auto_scheme_reads_a_stray_inside_tag_of_an_iob2_file_as_invalid_iob2(caplog):
    # test.conll starts two entities with B- and one with I- (after O): IOB2 with one bad sentence,
    # quarantined, instead of the whole file read as IOB1 with an invented B-LOC.
    with caplog.at_level("INFO", logger="fastadapt.readers.conll"):
        result = read_conll(load(FIXTURES / "ner_task"), {}, "my_ner")
    explicit = read_conll(load(FIXTURES / "ner_task"), {"scheme": "iob2"}, "my_ner")
    assert result.rows["tags"].tolist() == explicit.rows["tags"].tolist()
    assert result.quarantine[["file", "line", "reason"]].values.tolist() == [
        ["train.conll", 11, "undecodable_bytes"], ["test.conll", 1, "invalid_iob2"],
    ]
    assert "my_ner: test.conll read as IOB2 (detected; 2 entities start with B-, 1 with I-)" in caplog.text
    assert "test.conll mixes schemes" in caplog.text


def test_the_scheme_is_detected_per_file():
    iob2 = b"".join(f"Acme{i}\tB-ORG\nrose\tO\n\n".encode() for i in range(20)) + b"in\tO\nParis\tI-LOC\n\n"
    iob1 = b"Acme\tI-ORG\nCorp\tI-ORG\nand\tO\nBob\tI-PER\n\nIBM\tI-ORG\nGlobex\tB-ORG\n\n"
    result = read_conll({"train.conll": iob2, "test.conll": iob1}, {}, "mixed")
    train = result.rows[result.rows["origin"] == "train"]
    test = result.rows[result.rows["origin"] == "test"]
    assert all(tags == ["B-ORG", "O"] for tags in train["tags"])  # IOB2, nothing invented
    assert result.quarantine[["file", "line", "reason"]].values.tolist() == [["train.conll", 61, "invalid_iob2"]]
    assert test["tags"].tolist() == [["B-ORG", "I-ORG", "O", "B-PER"], ["B-ORG", "B-ORG"]]  # IOB1 converted
    declared = read_conll({"train.conll": iob2, "test.conll": iob1}, {"scheme": "iob1"}, "mixed")
    assert declared.rows["tags"].iloc[20] == ["O", "B-LOC"] and declared.quarantine.empty


def test_columns_can_be_chosen():
    files = {"train.conll": b"1 Acme NNP B-ORG x\n2 Corp NNP I-ORG x\n", "test.conll": b"1 Bob NNP B-PER x\n"}
    rows = read_conll(files, {"token_column": 1, "tag_column": 3}, "my_ner").rows
    assert rows["tokens"].tolist() == [["Acme", "Corp"], ["Bob"]]
    assert rows["tags"].tolist() == [["B-ORG", "I-ORG"], ["B-PER"]]


def test_missing_split_file_names_it():
    files = load(FIXTURES / "conll2003")
    with pytest.raises(RawInputError, match=r"'eng.testa' is missing.*eng.testb, eng.train.*make data"):
        read_conll(files, {"splits": {"validation": "eng.testa"}, "source_hint": "Run make data."}, "ner")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scheme": "bioes"}, r"'scheme' is 'bioes'; allowed values: \['iob1', 'iob2', 'auto'\]"),
        ({"tag_column": 7}, r"'tag_column' is 7, but lines of train.conll have 2 columns"),
        ({"entity_types": "PER"}, r"'entity_types' must be a non-empty list"),
        ({"tags_column": 1}, r"unknown reader option.*tags_column.*tag_column"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(RawInputError, match=message):
        read_conll(load(FIXTURES / "ner_task"), options, "my_ner")
