"""The default pipeline end to end on a tiny throw-away project, in a real KedroSession.

Two domains are pure configuration (README, "Bring your own task, no code"): a text-classification
task and an NER task in the generic formats, read from hand-written folders in
tests/fixtures/pipelines, with the news stream read from the small reader fixtures. Every figure
below is worked out from those files by hand.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.scheme import IOB2
from sklearn.metrics import f1_score

from tests.conftest import FIXTURES, make_project

from fastadapt.errors import UserInputError

pytestmark = pytest.mark.slow

TEXT, NER = "support_intent", "product_ner"
LABELS = ["account", "billing", "card", "delivery"]
PIPELINE_FIXTURES = FIXTURES / "pipelines"
READER_FIXTURES = FIXTURES / "readers"

PARAMETERS = f"""
seed: 42
test_origins: [test]
domains:
  {TEXT}:
    kind: text_classification      # reader labelled_csv, raw tasks.{TEXT}, 10 % validation: defaults
  {NER}:
    kind: ner                      # reader conll (scheme auto), split given: defaults
stream:
  sources:
    cnbc: {{raw: headlines, reader: cnbc_headlines, reader_options: {{file: cnbc_headlines.csv}}}}
    guardian: {{raw: headlines, reader: guardian_headlines, reader_options: {{file: guardian_headlines.csv}}}}
    stockemotions: {{raw: stockemotions, reader: stockemotions, reader_options: {{}}}}
kshot:
  ks: [1, 2]
  seeds: [0, 1]
  ner_ks: [1]
episodes:
  domain: {TEXT}
  class_splits: class_splits
  n_query: 1
  n_episodes: 3
  settings:
    2way_1shot: {{n_way: 2, k_shot: 1}}
unlabelled_pool:
  stream: true
  domain_splits: [train, validation]
baselines:
  tfidf: {{ngram_range: [1, 2], min_df: 1, sublinear_tf: true, C: 10.0, max_iter: 200, seed: 0}}
  crf: {{c1: 0.1, c2: 0.1, max_iterations: 10, seed: 0}}
evaluation:
  models: {{text_classification: [tfidf], ner: [crf]}}
  kshot_models: {{text_classification: [tfidf], ner: []}}
"""

# (file, line, reason) of every record the text task's files lose, and why.
TEXT_QUARANTINE = {
    ("train.csv", 50, "empty_text"),
    ("train.csv", 51, "wrong_column_count"),
    ("train.csv", 52, "empty_label"),
    ("test.csv", 10, "empty_text"),
    ("train.csv", 53, "duplicate"),  # line 4 with other case and spacing
    ("train.csv", 54, "conflicting_labels"),  # "is my order lost": delivery ...
    ("train.csv", 55, "conflicting_labels"),  # ... and billing
}
NER_QUARANTINE = {
    ("train.conll", 44, "wrong_column_count"),  # "to NNP B-LOC"
    ("train.conll", 50, "unknown_tag"),  # X-ORG
    ("train.conll", 38, "duplicate"),  # the sentence of line 18
}


def tiny_project(root: Path, with_text_task: bool = True) -> Path:
    """A throw-away project on the fixtures; `PARAMETERS` replaces every key it names."""
    raw = {
        f"tasks/{NER}": PIPELINE_FIXTURES / "ner_task",
        "class_splits": PIPELINE_FIXTURES / "class_splits",
        "headlines": READER_FIXTURES / "headlines",
        "stockemotions": READER_FIXTURES / "stockemotions",
        # Sources that the copied conf/base/parameters_*.yml files read, kept as they are.
        "dialogue_sgd": READER_FIXTURES / "dialogue_sgd",
    }
    if with_text_task:
        raw[f"tasks/{TEXT}"] = PIPELINE_FIXTURES / "text_task"
    project = make_project(root, raw, PARAMETERS)
    # bootstrap_project wants a source folder inside the project (the package itself is
    # installed, editable, in the venv).

    # The other conf/base/parameters_*.yml files are copied too; Kedro refuses a top-level key
    # defined in two files of one environment, so the keys PARAMETERS sets are dropped there.
    # Per-domain blocks (`<anything>.domains.<name>`) for domains this project does not have go too.
    ours = yaml.safe_load(PARAMETERS)
    for path in sorted((project / "conf" / "base").glob("parameters_*.yml")):
        theirs = yaml.safe_load(path.read_text()) or {}
        kept = {key: value for key, value in theirs.items() if key not in ours}
        kept = _without_other_domains(kept, set(ours["domains"]))
        if kept:
            path.write_text(yaml.safe_dump(kept, sort_keys=False))
        else:
            path.unlink()
    return project


def _without_other_domains(value, domains: set[str]):
    if not isinstance(value, dict):
        return value
    return {
        key: ({name: block for name, block in item.items() if name in domains}
              if key == "domains" and isinstance(item, dict) else _without_other_domains(item, domains))
        for key, item in value.items()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The default pipeline run once on the tiny project (as the `run_project` fixture runs it)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = tiny_project(tmp_path_factory.mktemp("tiny"))
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
        monkeypatch.delenv("KEDRO_ENV", raising=False)
        monkeypatch.chdir(project)
        bootstrap_project(project)
        with KedroSession.create(project_path=project) as session:
            session.run()
    print(f"tiny project: default pipeline in {time.perf_counter() - started:.1f} s")
    return project


def parquet(project: Path, relative: str) -> pd.DataFrame:
    return pd.read_parquet(project / "data" / relative)


def accounting(project: Path, domain: str) -> dict:
    return json.loads((project / "data" / "08_reporting" / domain / "ingestion_accounting.json").read_text())


def reconciles(entry: dict) -> bool:
    return entry["rows_in"] == entry["rows_out"] + entry["rows_quarantined"] and entry["rows_quarantined"] == sum(
        entry["quarantine_reasons"].values()
    )


def test_accounting_reconciles_in_every_json(tiny):
    documents = sorted((tiny / "data" / "08_reporting").glob("*/ingestion_accounting.json"))
    assert {path.parent.name for path in documents} >= {TEXT, NER, "stream"}
    for path in documents:
        document = json.loads(path.read_text())
        entries = [document] if "rows_in" in document else [document["total"], *document["sources"]]
        for entry in entries:
            assert reconciles(entry), (path, entry)
    text, ner = accounting(tiny, TEXT), accounting(tiny, NER)
    stream = json.loads((tiny / "data/08_reporting/stream/ingestion_accounting.json").read_text())
    assert (text["rows_in"], text["rows_out"], text["rows_quarantined"]) == (63, 56, 7)
    assert text["rows_out_by_origin"] == {"test": 8, "train": 48}
    assert (ner["rows_in"], ner["rows_out"], ner["rows_quarantined"]) == (12, 9, 3)
    assert ner["rows_out_by_origin"] == {"test": 3, "train": 6}
    assert {s["corpus"]: (s["rows_in"], s["rows_out"], s["rows_quarantined"]) for s in stream["sources"]} == {
        "cnbc": (10, 5, 5), "guardian": (7, 4, 3), "stockemotions": (9, 5, 4),
    }
    assert stream["total"]["rows_in"] == 26
    # The tables on disk hold what the accounting says.
    assert len(parquet(tiny, f"03_primary/{TEXT}/rows.parquet")) == text["rows_out"]
    assert len(parquet(tiny, "03_primary/news_stream.parquet")) == stream["total"]["rows_out"]


def test_quarantine_tables_hold_the_bad_rows_with_reasons(tiny):
    for domain, expected in ((TEXT, TEXT_QUARANTINE), (NER, NER_QUARANTINE)):
        quarantine = parquet(tiny, f"02_intermediate/{domain}/quarantine.parquet")
        assert set(zip(quarantine["file"], quarantine["line"], quarantine["reason"])) == expected
        assert len(quarantine) == len(expected)
        assert (quarantine["corpus"] == domain).all()
        counts = quarantine["reason"].value_counts().to_dict()
        assert accounting(tiny, domain)["quarantine_reasons"] == counts
    stream = parquet(tiny, "02_intermediate/stream/quarantine.parquet")
    assert stream.groupby("corpus")["reason"].value_counts().to_dict() == {
        ("cnbc", "empty_text"): 2, ("cnbc", "unparseable_date"): 2, ("cnbc", "wrong_column_count"): 1,
        ("guardian", "unparseable_date"): 3,
        ("stockemotions", "empty_text"): 1, ("stockemotions", "unknown_label"): 2,
        ("stockemotions", "unparseable_date"): 1,
    }
    assert stream["raw"].str.len().gt(0).all()


def test_splits_are_disjoint_and_cover_the_rows(tiny):
    for domain in (TEXT, NER):
        rows = parquet(tiny, f"03_primary/{domain}/rows.parquet")
        splits = parquet(tiny, f"04_feature/{domain}/splits.parquet")
        assert splits["row_id"].is_unique  # each row in exactly one split
        assert sorted(splits["row_id"]) == sorted(rows["row_id"])
        assert (splits.loc[splits["split"] == "test", "origin"] == "test").all()
        assert (splits.loc[splits["split"] != "test", "origin"] == "train").all()
    splits = parquet(tiny, f"04_feature/{TEXT}/splits.parquet")
    sizes = splits["split"].value_counts().to_dict()
    assert sizes == {"train": 43, "validation": 5, "test": 8}  # 10 % of 48 training rows, rounded up
    validation = splits[splits["split"] == "validation"]
    assert sorted(validation["label"].unique()) == LABELS  # stratified: every class is held out
    train_keys = set(splits.loc[splits["split"] == "train", "text"].str.casefold())
    assert not train_keys & set(validation["text"].str.casefold())
    assert parquet(tiny, f"04_feature/{NER}/splits.parquet")["split"].value_counts().to_dict() == {
        "train": 6, "test": 3,
    }


def test_kshot_sets_have_k_rows_per_class(tiny):
    splits = parquet(tiny, f"04_feature/{TEXT}/splits.parquet")
    train = splits[splits["split"] == "train"].set_index("row_id")
    sets = parquet(tiny, f"04_feature/{TEXT}/kshot_sets.parquet")
    assert sorted(sets.groupby(["k", "seed"]).groups) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    for (k, seed), chosen in sets.groupby(["k", "seed"]):
        assert chosen["row_id"].isin(train.index).all(), (k, seed)
        assert chosen["row_id"].is_unique
        assert train.loc[chosen["row_id"], "label"].tolist() == chosen["label"].tolist()
        assert chosen["label"].value_counts().to_dict() == {label: k for label in LABELS}, (k, seed)
    # NER: every entity type of the train split is mentioned at least once per 1-shot set.
    ner_splits = parquet(tiny, f"04_feature/{NER}/splits.parquet").set_index("row_id")
    ner_sets = parquet(tiny, f"04_feature/{NER}/kshot_sets.parquet")
    assert sorted(ner_sets.groupby(["k", "seed"]).groups) == [(1, 0), (1, 1)]
    for _, chosen in ner_sets.groupby(["k", "seed"]):
        support = ner_splits.loc[chosen["row_id"]]
        assert (support["split"] == "train").all()
        types = {tag[2:] for tags in support["tags"] for tag in tags if tag.startswith("B-")}
        assert types == {"LOC", "ORG", "PER"}


def test_episodes_and_unlabelled_pool(tiny):
    episodes = parquet(tiny, "04_feature/class_split_episodes.parquet")
    rows = parquet(tiny, f"03_primary/{TEXT}/rows.parquet").set_index("row_id")
    assert sorted(episodes["episode"].unique()) == [0, 1, 2]
    assert set(episodes["setting"]) == {"2way_1shot"} and set(episodes["split"]) == {1}
    assert set(episodes["label"]) == {"account", "billing"}  # the test classes of 01/test.txt
    assert episodes.groupby(["episode", "label", "role"]).size().eq(1).all()  # 1 support, 1 query
    assert (rows.loc[episodes["row_id"], "label"].to_numpy() == episodes["label"].to_numpy()).all()
    pool = parquet(tiny, "04_feature/unlabelled_pool.parquet")
    splits = parquet(tiny, f"04_feature/{TEXT}/splits.parquet")
    assert not set(pool["text"]) & set(splits.loc[splits["split"] == "test", "text"])
    assert {"stream:cnbc", "stream:guardian", "stream:stockemotions", TEXT, NER} <= set(pool["source"])
    assert pool["text"].is_unique


def test_predictions_and_metrics(tiny):
    out, reports = tiny / "data" / "07_model_output", tiny / "data" / "08_reporting"
    splits = parquet(tiny, f"04_feature/{TEXT}/splits.parquet")
    test_ids = sorted(splits.loc[splits["split"] == "test", "row_id"])
    predictions = pd.read_parquet(out / TEXT / "tfidf" / "test_predictions.parquet")
    assert sorted(predictions["row_id"]) == test_ids
    proba = predictions[[f"proba__{label}" for label in LABELS]]
    assert proba.sum(axis=1).round(6).eq(1).all()
    assert set(predictions["predicted"]) <= set(LABELS)
    metrics = json.loads((reports / TEXT / "tfidf" / "metrics.json").read_text())
    assert metrics["test"]["n"] == 8
    assert metrics["test"]["accuracy"] >= 0.5  # chance is 0.25; test rows reuse training words
    assert metrics["test"]["accuracy"] == pytest.approx((predictions["label"] == predictions["predicted"]).mean())
    assert metrics["test"]["macro_f1"] == pytest.approx(
        f1_score(predictions["label"], predictions["predicted"], labels=LABELS, average="macro", zero_division=0))
    kshot_predictions = pd.read_parquet(out / TEXT / "tfidf" / "kshot_predictions.parquet")
    assert kshot_predictions.groupby(["k", "seed"]).size().to_dict() == {
        (1, 0): 8, (1, 1): 8, (2, 0): 8, (2, 1): 8,
    }
    kshot_metrics = pd.read_csv(reports / TEXT / "tfidf" / "kshot_metrics.csv")
    recomputed = kshot_predictions.assign(correct=kshot_predictions["label"] == kshot_predictions["predicted"])
    recomputed = recomputed.groupby(["k", "seed"])["correct"].mean()
    assert len(kshot_metrics) == 4
    assert kshot_metrics.set_index(["k", "seed"])["accuracy"].to_dict() == pytest.approx(recomputed.to_dict())
    for name in ("class_report.csv", "confusion_matrix.png"):
        assert (reports / TEXT / "tfidf" / name).stat().st_size > 0
    assert (reports / TEXT / "learning_curve.png").stat().st_size > 0

    ner_predictions = pd.read_parquet(out / NER / "crf" / "test_predictions.parquet")
    assert len(ner_predictions) == 3
    assert all(len(p) == len(t) for p, t in zip(ner_predictions["predicted"], ner_predictions["tags"]))
    ner_metrics = json.loads((reports / NER / "crf" / "metrics.json").read_text())
    assert ner_metrics["test"]["n_sentences"] == 3
    assert ner_metrics["test"]["entity_f1"] > 0  # test entities are names seen in training
    assert ner_metrics["test"]["entity_f1"] == pytest.approx(seqeval_f1(
        [list(t) for t in ner_predictions["tags"]], [list(p) for p in ner_predictions["predicted"]],
        mode="strict", scheme=IOB2))
    assert (reports / NER / "crf" / "token_report.csv").stat().st_size > 0
    assert list((tiny / "data" / "06_models" / NER / "baselines" / "crf").iterdir())  # versioned model


def test_summary_and_mlflow_run(tiny):
    summary = (tiny / "data" / "08_reporting" / "summary.md").read_text()
    assert TEXT in summary and NER in summary
    assert "(config environment: `base`)" in summary  # derived from the run, which has no --env
    assert "2way_1shot" in summary

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fastadapt-test")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert f"MLflow run `{run.info.run_id}`" in summary  # the report names the run that made it
    metrics = run.data.metrics
    assert metrics[f"{TEXT}.tfidf.test.accuracy"] == pytest.approx(
        json.loads((tiny / f"data/08_reporting/{TEXT}/tfidf/metrics.json").read_text())["test"]["accuracy"]
    )
    assert f"{NER}.crf.test.entity_f1" in metrics
    assert "'ks': [1, 2]" in run.data.params["kshot"]
    assert "summary.md" in {item.path for item in client.list_artifacts(run.info.run_id)}
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id, f"{TEXT}/tfidf")}
    assert {f"{TEXT}/tfidf/metrics.json", f"{TEXT}/tfidf/confusion_matrix.png"} <= artifacts


def test_ingestion_alone_and_a_missing_task_folder(tmp_path, run_project):
    project = tiny_project(tmp_path, with_text_task=False)
    with pytest.raises(UserInputError) as raised:  # one line, before anything runs
        run_project(project, pipeline_name="ingestion")
    message = str(raised.value)
    assert message.startswith(f"domains.{TEXT}.raw (by default tasks.<domain>) is 'tasks.{TEXT}', but the raw "
                              f"folder data/01_raw/tasks/{TEXT} does not exist"), message
    assert "train.csv and test.csv" in message  # the catalog's source_hint says what to add

    link = project / "data" / "01_raw" / "tasks" / TEXT
    link.symlink_to(PIPELINE_FIXTURES / "text_task", target_is_directory=True)
    run_project(project, pipeline_name="ingestion")
    data = project / "data"
    assert accounting(project, TEXT)["rows_in"] == 63
    assert (data / "03_primary" / "news_stream.parquet").is_file()
    written = {layer.name for layer in data.iterdir() if layer.name != "01_raw" and any(layer.iterdir())}
    assert written == {"02_intermediate", "03_primary", "08_reporting"}  # nothing downstream
