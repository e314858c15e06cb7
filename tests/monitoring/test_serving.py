"""The champion served by the real `mlflow models serve`, spoken to over HTTP on loopback.

One server for the module: a TF-IDF model registered as champion in a fresh SQLite registry, then
`mlflow models serve -m models:/<name>@champion --env-manager local` on a free port. Good requests
get labels and scores; bad ones (wrong column, empty body, non-JSON, a 1 MB text) get a 4xx and a
message, and the server keeps answering.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException

from tests.serving_checks import bounded_server, check_bad_requests, wait_until_serving

from fastadapt.models.baselines import TfidfLogisticRegression
from fastadapt.monitoring import registry
from fastadapt.monitoring.serving import TextClassifierModel, load_model_artifact, save_model_artifact, validate_texts

NAME = "served_sentiment"
TEXTS = ["profits soar to a record", "shares plunge after loss", "profit beats forecasts", "sales fall sharply",
         "record growth in revenue", "heavy loss and job cuts"]
LABELS = ["positive", "negative", "positive", "negative", "positive", "negative"]
STARTUP_SECONDS = 90


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def model() -> TfidfLogisticRegression:
    return TfidfLogisticRegression().fit(TEXTS * 2, LABELS * 2)


@pytest.fixture(scope="module")
def server_registry(tmp_path_factory, model, sqlite_tracking) -> str:
    """A SQLite registry whose `served_sentiment` champion is `model`; its tracking URI."""
    with sqlite_tracking(tmp_path_factory.mktemp("serving"), "serving-test") as uri:
        registry.ensure_champion(model, NAME)
    return uri


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_registry):
    root = tmp_path_factory.mktemp("mlflow-serve")
    uri = server_registry

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # uvicorn and mlflow live beside the interpreter
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        seconds = wait_until_serving(process, base, root / "server.log")
        print(f"mlflow models serve answered after {seconds:.1f} s")
        yield base
    finally:
        os.killpg(process.pid, 15)  # the server and its uvicorn child, started in their own session
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def invoke(base: str, body, content_type: str = "application/json") -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(f"{base}/invocations", data=data, headers={"Content-Type": content_type}, timeout=30)


def test_good_requests_get_labels_and_scores(server, model):
    texts = ["profits soar", "shares plunge"]
    response = invoke(server, {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}})
    assert response.status_code == 200, response.text
    predictions = pd.DataFrame(response.json()["predictions"])
    assert list(predictions.columns) == ["label", "score", "proba__negative", "proba__positive"]
    assert predictions["label"].tolist() == list(model.predict(texts))
    np.testing.assert_allclose(predictions[["proba__negative", "proba__positive"]], model.predict_proba(texts))
    np.testing.assert_allclose(predictions["score"], model.predict_proba(texts).max(axis=1))
    records = invoke(server, {"dataframe_records": [{"text": "record growth", "source": "extra columns are ignored"}]})
    assert records.status_code == 200 and records.json()["predictions"][0]["label"] == "positive"


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        ({"dataframe_split": {"columns": ["headline"], "data": [["profits soar"]]}}, "application/json",
         "missing inputs ['text']"),
        ("", "application/json", "valid JSON"),
        ("this is not json {", "application/json", "valid JSON"),
        ({"dataframe_split": {"columns": ["text"], "data": []}}, "application/json", "no rows"),
        ({"dataframe_split": {"columns": ["text"], "data": [[None]]}}, "application/json", "missing"),
        ({"dataframe_split": {"columns": ["text"], "data": [["a" * 1_000_000]]}}, "application/json",
         "at most 20000"),
        ("profits soar", "text/plain", "content types"),
    ],
    ids=["wrong-column", "empty-body", "not-json", "no-rows", "null-text", "1MB-text", "wrong-content-type"],
)
def test_bad_requests_get_a_4xx_and_the_server_keeps_answering(server, body, content_type, message):
    response = invoke(server, body, content_type)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert message in response.text
    after = invoke(server, {"dataframe_split": {"columns": ["text"], "data": [["profits soar"]]}})
    assert after.status_code == 200 and after.json()["predictions"][0]["label"] == "positive"


def test_the_bounded_server_answers_every_bad_request_with_a_short_4xx(server_registry, tmp_path, model):
    """`fastadapt.monitoring.server`: nested JSON, oversized bodies (one, chunked, 20 at once)."""

    def good() -> None:
        response = invoke(base, {"dataframe_split": {"columns": ["text"], "data": [["profits soar"]]}})
        assert response.status_code == 200 and response.json()["predictions"][0]["label"] == "positive"

    with bounded_server(f"models:/{NAME}@champion", server_registry, tmp_path / "server.log") as base:
        good()
        timings = check_bad_requests(base, good)
    print(f"bounded server: {timings}")


def test_the_wrapper_checks_its_input_and_round_trips_models(tmp_path, model):
    assert validate_texts(pd.DataFrame({"text": ["a", "b"], "x": [1, 2]})) == ["a", "b"]
    assert validate_texts(["a"]) == ["a"]
    for bad, message in [(pd.DataFrame({"t": ["a"]}), "must have a 'text' column"), (42, "table with a 'text'"),
                         (pd.DataFrame({"text": ["abc"]}), "at most 2 are accepted")]:
        with pytest.raises(MlflowException, match=message) as error:
            validate_texts(bad, max_text_chars=2)
        assert error.value.get_http_status_code() == 400
    path = save_model_artifact(model, tmp_path / "model")
    wrapper = TextClassifierModel()
    wrapper.classifier = load_model_artifact(path)
    table = wrapper.predict(None, pd.DataFrame({"text": ["profits soar"]}))
    assert table.loc[0, "label"] == "positive" and table.loc[0, "score"] > 0.5


def test_a_directory_model_round_trips_through_a_pyfunc_model(tmp_path):
    """A neural classifier (saved with save_directory) is served by the same wrapper."""
    from fastadapt.adaptation import AdaptationConfig, fit_classifier
    from fastadapt.models.backbones import load_backbone, train_wordpiece_tokenizer
    from fastadapt.monitoring.serving import text_signature

    texts, labels = TEXTS * 2, LABELS * 2
    backbone = load_backbone("tiny-bert", tokenizer=train_wordpiece_tokenizer(texts, vocab_size=120, min_frequency=1))
    classifier = fit_classifier(backbone, texts, labels, AdaptationConfig(strategy="prototype", device="cpu"))
    artifact = save_model_artifact(classifier, tmp_path / "model")
    assert artifact.is_dir() and (artifact / "fastadapt_model.json").is_file()
    mlflow.pyfunc.save_model(str(tmp_path / "pyfunc"), python_model=TextClassifierModel(),
                             artifacts={"model": str(artifact)}, signature=text_signature(classifier.classes_),
                             pip_requirements=["mlflow"])
    served = mlflow.pyfunc.load_model(str(tmp_path / "pyfunc")).predict(pd.DataFrame({"text": TEXTS[:2]}))
    np.testing.assert_allclose(served[["proba__negative", "proba__positive"]], classifier.predict_proba(TEXTS[:2]),
                               rtol=1e-5)
    assert served["label"].tolist() == list(classifier.predict(TEXTS[:2]))
