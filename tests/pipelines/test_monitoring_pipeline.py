"""The monitoring and retraining pipelines in a real KedroSession on a throw-away project.

A hand-made stream of 60 days: StockEmotions-style posts about tickers X and Y (gold labels, 20 a
day, a quarter bearish) where X's posts of 2024-02-20 are nearly all bearish, and news headlines
about Acme (found by a small CRF) whose 2024-02-25 headlines are mostly negative. The sentiment
model is a TF-IDF model that reads "plunge" as negative and "soar" as positive, so its labels are
the gold ones: the alerts must be X on 02-20 and Acme on 02-25, and the labelled check must find
every gold surge day.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from tests.conftest import REPO_ROOT, make_project

from fastadapt.models import persistence
from fastadapt.models.baselines import CrfTagger, TfidfLogisticRegression

pytestmark = pytest.mark.slow

VERSION = "2024-01-01T00.00.00.000Z"
DAYS = pd.date_range("2024-01-01", periods=60, freq="D")
X_SURGE, ACME_SURGE = pd.Timestamp("2024-02-20"), pd.Timestamp("2024-02-25")


def news_stream() -> pd.DataFrame:
    rows = []
    for day in DAYS:
        for ticker in ("X", "Y"):
            bearish_posts = 18 if (ticker == "X" and day == X_SURGE) else 5
            for post in range(20):
                bearish = post < bearish_posts
                rows.append({"published_at": day + pd.Timedelta(hours=8, minutes=post), "source": "stockemotions",
                             "headline": f"${ticker} will plunge hard" if bearish else f"${ticker} set to soar",
                             "ticker": ticker, "label": "bearish" if bearish else "bullish"})
        negative_news = 8 if day == ACME_SURGE else 1
        for item in range(10):
            text = "Acme shares plunge" if item < negative_news else ("Acme profits soar" if item % 2 else
                                                                      "Acme meets analysts")
            rows.append({"published_at": day + pd.Timedelta(hours=12, minutes=item), "source": "guardian",
                         "headline": text, "ticker": None, "label": None})
    stream = pd.DataFrame(rows)
    stream.insert(0, "row_id", np.arange(len(stream)))
    return stream.astype({"ticker": "string", "label": "string"})


def sentiment_model() -> TfidfLogisticRegression:
    texts = ["will plunge hard", "shares plunge", "set to soar", "profits soar", "meets analysts", "calm day"] * 3
    labels = ["negative", "negative", "positive", "positive", "neutral", "neutral"] * 3
    return TfidfLogisticRegression().fit(texts, labels)


def ner_model() -> CrfTagger:
    sentences, tags = [], []
    for org in ("Acme", "Globex", "Initech"):
        for template in ("{o} shares plunge", "{o} profits soar", "{o} meets analysts", "Investors buy {o} stock"):
            tokens = template.format(o=org).split()
            sentences.append(tokens)
            tags.append(["B-ORG" if t == org else "O" for t in tokens])
    for sentence in ("Markets calm today", "Stocks drift lower", "Shares rise again"):
        sentences.append(sentence.split())
        tags.append(["O"] * 3)
    return CrfTagger(max_iterations=50).fit(sentences, tags)


def save_model(project: Path, domain: str, name: str, model) -> None:
    path = project / "data" / "06_models" / domain / "baselines" / name / VERSION / name
    path.parent.mkdir(parents=True, exist_ok=True)
    persistence.save_model(model, path)


def splits() -> pd.DataFrame:
    positive = ["profits soar", "sales climb", "record growth", "strong gains", "shares rally", "beats forecasts"]
    negative = ["shares plunge", "sales slump", "heavy losses", "weak demand", "shares tumble", "misses forecasts"]
    rows = []
    for split, suffix in (("train", "this quarter"), ("test", "this year")):
        for text in positive:
            rows.append({"text": f"{text} {suffix}", "label": "positive", "split": split})
        for text in negative:
            rows.append({"text": f"{text} {suffix}", "label": "negative", "split": split})
    frame = pd.DataFrame(rows)
    frame.insert(0, "row_id", np.arange(len(frame)))
    return frame


def write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("monitoring")
    labelled = root / "tiny_new"
    labelled.mkdir()
    pd.DataFrame({"text": ["profits soar again", "shares plunge again", "sales climb again", "sales slump again"] * 3,
                  "label": ["positive", "negative", "positive", "negative"] * 3}).to_csv(labelled / "train.csv", index=False)
    pd.DataFrame({"text": ["record growth again", "heavy losses again"],
                  "label": ["positive", "negative"]}).to_csv(labelled / "test.csv", index=False)
    project = make_project(root, {"tasks/tiny_new": labelled})

    news_stream().to_parquet(project / "data" / "03_primary" / "news_stream.parquet")
    save_model(project, "tiny", "tfidf", sentiment_model())
    save_model(project, "tiny", "crf", ner_model())
    # The current model of the retraining test is weak: trained on two rows only.
    save_model(project, "tiny_sentiment", "tfidf", TfidfLogisticRegression().fit(["soar", "plunge"], ["positive", "negative"]))
    (project / "data" / "04_feature" / "tiny_sentiment").mkdir(parents=True)
    splits().to_parquet(project / "data" / "04_feature" / "tiny_sentiment" / "splits.parquet")

    base = project / "conf" / "base"
    monitoring = yaml.safe_load((base / "parameters_monitoring.yml").read_text())
    settings = monitoring["monitoring"]
    settings.update(model="tiny.model.tfidf", ner_model="tiny.model.crf")
    settings["scoring"]["progress"] = False
    settings["entities"].update(progress=False, aliases={})
    settings["drift"].update(current_days=10, reference_days=20, max_samples=60, n_permutations=50, num_threads=1)
    settings["report"]["recent_days"] = 10
    write_yaml(base / "parameters_monitoring.yml", monitoring)
    write_yaml(base / "parameters_retraining.yml", {"retraining": {
        "metric": "macro_f1", "margin": 0.05,
        "models": {"tiny_sentiment": {
            "domain": "tiny_sentiment", "current": "tiny_sentiment.model.tfidf", "labelled_folder": "tasks.tiny_new",
            "reader": "labelled_csv", "reader_options": {}, "test_sets": ["domain", "new"],
            "challenger": {"kind": "tfidf", "include_domain_train": True, "tfidf": {"ngram_range": [1, 2]}}}},
    }})
    return project


@pytest.fixture(scope="module")
def monitored(project, request):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
        monkeypatch.chdir(project)
        bootstrap_project(project)
        with KedroSession.create(project_path=project) as session:
            session.run(pipeline_names=["monitoring"])
    print(f"monitoring pipeline on the tiny project: {time.perf_counter() - started:.1f} s")
    return project / "data" / "08_reporting" / "monitoring"


def test_alerts_are_the_surges_with_their_headlines(monitored):
    alerts = [json.loads(line) for line in (monitored / "alerts.jsonl").read_text().splitlines() if line.strip()]
    found = {(a["entity"], a["window_end"]) for a in alerts}
    assert ("X", "2024-02-20") in found and ("Acme", "2024-02-25") in found
    assert not any(a["entity"] == "Y" for a in alerts)
    x = next(a for a in alerts if a["entity"] == "X")
    assert x["n"] == 20 and x["n_negative"] == 18 and x["p_adjusted"] <= 0.01 and x["severity"] == "high"
    assert x["headlines"][0] == "$X will plunge hard" and x["model"] == "tiny.model.tfidf"
    scored = pd.read_parquet(monitored.parents[1] / "07_model_output" / "monitoring" / "scored_stream.parquet")
    assert len(scored) == len(news_stream())
    assert {tuple(e) for e in scored.loc[scored["source"] == "guardian", "entities"]} == {("Acme",)}
    assert set(scored["predicted"]) == {"negative", "positive", "neutral"}
    daily = pd.read_parquet(monitored / "daily.parquet")
    assert {"X", "Y", "Acme", "__all__"} <= set(daily["entity"])


def test_labelled_check_finds_every_gold_surge_day(monitored):
    check = json.loads((monitored / "labelled_check.json").read_text())
    assert check["status"] == "checked" and check["n_items"] == 60 * 2 * 20
    assert check["precision"] == 1.0 and check["recall"] == 1.0
    assert ["X", "2024-02-20"] in check["gold_days"]
    assert check["control_alerts_gold"] == check["control_alerts_predicted"] == 0


def test_drift_report_and_the_morning_report(monitored):
    drift = json.loads((monitored / "drift.json").read_text())
    assert drift["status"] == "tested" and drift["windows"]["current"] == ["2024-02-20", "2024-02-29"]
    assert drift["embedding"]["n_permutations"] == 50 and drift["embedder"] == "minilm-l6"
    assert isinstance(drift["retraining_recommended"], bool) and drift["reason"]
    report = (monitored / "report.html").read_text()
    for text in ("Monitoring report — 2024-02-29", "Acme", "$X will plunge hard", "data:image/png;base64,",
                 "precision / recall", "shuffled"):
        assert text in report
    alerting = {json.loads(line)["entity"] for line in (monitored / "alerts.jsonl").read_text().splitlines()
                if line.strip()}
    timelines = {p.name for p in (monitored / "timelines").glob("*.png")}
    # one timeline per alerting entity (file names made safe: __all__ is all.png), none for Y
    assert {"Acme.png", "X.png"} <= timelines and "Y.png" not in timelines
    assert len(timelines) == len(alerting)


def test_metrics_are_in_mlflow(monitored, project):
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["fastadapt-test"])
    metrics = runs.filter(like="metrics.monitoring.").iloc[0]
    assert metrics["metrics.monitoring.items_scored"] == len(news_stream())
    alerts = [line for line in (monitored / "alerts.jsonl").read_text().splitlines() if line.strip()]
    assert len(alerts) >= 2  # X and Acme, checked above
    assert metrics["metrics.monitoring.check.recall"] == 1.0 and metrics["metrics.monitoring.alerts"] == len(alerts)


def test_retraining_promotes_then_keeps_then_restores(project, monitored):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from fastadapt.monitoring.cli import main as cli

    log = project / "data" / "08_reporting" / "retraining" / "decisions.jsonl"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
        monkeypatch.chdir(project)
        bootstrap_project(project)
        for _ in range(2):
            with KedroSession.create(project_path=project) as session:
                session.run(pipeline_names=["retraining"])
        decisions = [json.loads(line) for line in log.read_text().splitlines()]
        # Week 1: the catalog model becomes champion, the challenger (trained on the new rows too)
        # beats it by more than the margin. Week 2: the same challenger ties with itself: kept.
        assert [d["action"] for d in decisions] == ["first_champion", "promoted", "rejected"]
        assert decisions[1]["champion_score"] < decisions[1]["challenger_score"] - 0.05
        assert decisions[2]["delta"] == pytest.approx(0.0) and decisions[2]["champion_version_after"] == 2
        assert decisions[1]["n_test"] == 12 + 2 and decisions[1]["n_new_train"] == 12
        result = CliRunner().invoke(cli, ["restore-champion", "--name", "tiny_sentiment"])
        assert result.exit_code == 0, result.output
    assert "restored from version 2 to 1" in result.output
    assert json.loads(log.read_text().splitlines()[-1])["action"] == "restored"
    assert (project / "data" / "08_reporting" / "retraining" / "tiny_sentiment" / "decision.json").is_file()


def test_a_monitoring_mistake_is_one_line_through_the_kedro_cli(project, monitored):
    """A wrong value in conf/local stops `kedro run` with one line naming the parameter, no traceback."""
    from tests.pipelines.test_cli_errors import kedro, one_error_line

    local = project / "conf" / "local" / "parameters_monitoring.yml"
    assert not local.exists()
    write_yaml(local, {"monitoring": {"surge": {"alpha": 1.5}}})
    try:
        line = one_error_line(*kedro(project, "run", "--pipelines", "monitoring"))
    finally:
        local.unlink()
    assert line == "Error: monitoring.surge.alpha is 1.5; allowed: a number > 0.0 and < 1.0"


def test_the_repository_parameters_build_both_pipelines():
    from fastadapt.pipelines.monitoring.pipeline import monitoring_pipeline
    from fastadapt.pipelines.retraining.pipeline import model_retraining

    monitoring = yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_monitoring.yml").read_text())["monitoring"]
    assert len(monitoring_pipeline(monitoring).nodes) == 10
    without_ner = monitoring_pipeline({**monitoring, "ner_model": None, "drift": {**monitoring["drift"], "embedder": None}})
    assert "monitoring.embed_drift_windows_node" not in {n.name for n in without_ner.nodes}
    retraining = yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_retraining.yml").read_text())["retraining"]
    neural = {**retraining["models"]["finance_sentiment"], "challenger": {"kind": "adaptation"}}
    tags = {n.name.rsplit(".", 1)[-1]: n.tags for n in model_retraining("finance_sentiment", neural).nodes}
    assert "gpu" in tags["fit_challenger_node"] and "cpu" in tags["read_labelled_node"]


def test_a_promotion_changes_the_model_the_next_monitoring_run_scores_with(project, monitored):
    """Monitoring scores with `<name>.champion` (models:/tiny_sentiment@champion); the report names
    the version, and after retraining promotes a challenger the next run scores with that one."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from mlflow import MlflowClient

    out = project / "data" / "08_reporting" / "monitoring"
    scored_path = project / "data" / "07_model_output" / "monitoring" / "scored_stream.parquet"
    local = project / "conf" / "local" / "parameters_monitoring.yml"
    write_yaml(local, {"monitoring": {"model": "tiny_sentiment.champion", "drift": {"embedder": None}}})

    def run(pipeline: str) -> None:
        with KedroSession.create(project_path=project) as session:
            session.run(pipeline_names=[pipeline])

    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
            monkeypatch.chdir(project)
            bootstrap_project(project)
            run("retraining")  # registers the champion and a challenger if there is none yet
            mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
            client = MlflowClient()
            client.set_registered_model_alias("tiny_sentiment", "champion", "1")  # the weak first champion
            run("monitoring")
            before = json.loads((out / "scoring_stats.json").read_text())["registered_model"]
            assert before["name"] == "tiny_sentiment" and before["version"] == "1" and before["aliases"] == ["champion"]
            assert "tiny_sentiment v1" in (out / "report.html").read_text()
            scores_before = pd.read_parquet(scored_path)

            run("retraining")  # the challenger beats version 1 by the margin: promoted
            promoted = client.get_model_version_by_alias("tiny_sentiment", "champion").version
            assert promoted != "1"
            run("monitoring")
    finally:
        local.unlink()
    after = json.loads((out / "scoring_stats.json").read_text())["registered_model"]
    assert after["version"] == str(promoted) and after["decision"] == "promoted"
    assert f"tiny_sentiment v{promoted}" in (out / "report.html").read_text()
    scores_after = pd.read_parquet(scored_path)
    assert not np.allclose(scores_before["negative_score"], scores_after["negative_score"])
    metrics = mlflow.search_runs(experiment_names=["fastadapt-test"], order_by=["start_time DESC"])
    assert metrics["metrics.monitoring.model_version"].dropna().iloc[0] == int(promoted)
