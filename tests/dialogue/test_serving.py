"""The answer suggester as an MLflow pyfunc model: logged, registered, loaded back and served.

A TF-IDF intent classifier on 12 hand-written messages of 3 intents, a reply bank of those
messages with agent replies, embedded with the CPU-light ``hashing`` backbone; logged to a SQLite
registry, loaded with ``mlflow.pyfunc.load_model``, then served by the real
``mlflow models serve --env-manager local`` on loopback and asked over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from tests.monitoring.test_serving import free_port, invoke
from tests.serving_checks import bounded_server, check_bad_requests, wait_until_serving

from fastadapt.dialogue.serving import (
    AnswerSuggesterModel,
    hashing_embed,
    log_answer_suggester,
    log_suggester_node,
)
from fastadapt.models.baselines import TfidfLogisticRegression

NAME = "answer_suggester_test"
PAIRS = [
    ("billing", "I was charged twice on my card", "Sorry about that, I have refunded the duplicate charge."),
    ("billing", "why is my bill so high this month", "Your bill includes a one-off activation fee."),
    ("billing", "refund the extra charge on my invoice", "Sorry about that, I have refunded the duplicate charge."),
    ("billing", "wrong amount charged on my bill", "I have refunded the difference to your card."),
    ("password", "I forgot my password", "You can reset it from the login page with 'Forgot password'."),
    ("password", "cannot log in, password rejected", "You can reset it from the login page with 'Forgot password'."),
    ("password", "how do I reset my password", "I have sent you a password reset link by email."),
    ("password", "locked out after wrong password attempts", "Your account is unlocked, please try again."),
    ("delivery", "where is my parcel", "Your parcel is on its way and arrives tomorrow."),
    ("delivery", "my delivery is late", "Sorry for the delay, your parcel arrives tomorrow."),
    ("delivery", "the parcel never arrived", "I have opened an investigation with the carrier."),
    ("delivery", "track my order delivery", "Your parcel is on its way and arrives tomorrow."),
]


@pytest.fixture(scope="module")
def suggester(tmp_path_factory):
    bank = pd.DataFrame(PAIRS, columns=["intent", "user_text", "agent_text"])
    classifier = TfidfLogisticRegression().fit(bank["user_text"].tolist(), bank["intent"].tolist())
    embeddings = pd.DataFrame({"user_embedding": list(hashing_embed(bank["user_text"])),
                               "reply_embedding": list(hashing_embed(bank["agent_text"]))})
    root = tmp_path_factory.mktemp("suggester")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("suggester-test", artifact_location=str(root / "artifacts"))
        mlflow.set_experiment(experiment_id=experiment)
        model_uri = log_answer_suggester(classifier, bank, embeddings, "hashing", "suggester",
                                         registered_model_name=NAME, top_n=2).model_uri
        node = log_suggester_node(classifier, bank, embeddings,
                                  {"backbone": "hashing", "neighbours": 5, "top_n": 3, "registered_model": NAME})
        loaded = mlflow.pyfunc.load_model(model_uri)
    finally:
        mlflow.set_tracking_uri(previous)
    return {"uri": uri, "root": root, "classifier": classifier, "model_uri": model_uri, "node": node, "loaded": loaded}


def test_logged_model_loads_back_and_suggests(suggester):
    assert suggester["node"]["version"] == "2" and suggester["node"]["registered_model"] == NAME
    assert suggester["node"]["registered_model_uri"] == f"models:/{NAME}/2" and suggester["node"]["n_pairs"] == 12
    texts = ["I was charged twice", "password reset please", "parcel late"]
    table = suggester["loaded"].predict(pd.DataFrame({"text": texts, "other": [1, 2, 3]}))
    assert list(table.columns) == ["predicted_intent", "intent_probability", "replies"]
    assert table["predicted_intent"].tolist() == list(suggester["classifier"].predict(texts))
    assert table["predicted_intent"].tolist() == ["billing", "password", "delivery"]
    assert ((table["intent_probability"] > 0) & (table["intent_probability"] <= 1)).all()
    replies = json.loads(table.loc[0, "replies"])
    assert len(replies) == 2  # the logged top_n
    assert set(replies[0]) == {"reply", "representativeness", "similar_request"}
    billing = {agent for intent, _, agent in PAIRS if intent == "billing"}
    assert all(r["reply"] in billing for r in replies)
    more = suggester["loaded"].predict(pd.DataFrame({"text": ["where is my parcel"]}), params={"top_n": 3})
    assert len(json.loads(more.loc[0, "replies"])) == 3
    with pytest.raises(MlflowException, match="must have a 'text' column"):
        suggester["loaded"].unwrap_python_model().predict(None, pd.DataFrame({"message": ["hi"]}))
    with pytest.raises(MlflowException, match="top_n must be"):
        suggester["loaded"].predict(pd.DataFrame({"text": ["hi"]}), params={"top_n": 0})
    assert AnswerSuggesterModel().__getstate__()["suggester"] is None


def test_served_model_answers_over_http(suggester):
    root, port = suggester["root"], free_port()
    bin_dir = str(Path(sys.executable).parent)  # uvicorn and mlflow live beside the interpreter
    env = {**os.environ, "MLFLOW_TRACKING_URI": suggester["uri"],
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    log_path = root / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}/1", "--env-manager", "local",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(process, base, log_path)
            good = invoke(base, {"dataframe_split": {"columns": ["text"], "data": [["I forgot my password"]]},
                                 "params": {"top_n": 1}})
            assert good.status_code == 200, good.text
            row = good.json()["predictions"][0]
            assert row["predicted_intent"] == "password" and 0 < row["intent_probability"] <= 1
            replies = json.loads(row["replies"])
            assert len(replies) == 1 and "password" in replies[0]["reply"].lower() + replies[0]["similar_request"]
            bad = invoke(base, {"dataframe_split": {"columns": ["message"], "data": [["I forgot my password"]]}})
            assert 400 <= bad.status_code < 500, (bad.status_code, bad.text[:500])
            assert "text" in bad.text
        finally:
            os.killpg(process.pid, 15)  # the server and its uvicorn child, in their own session
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


def test_the_bounded_server_answers_every_bad_request_with_a_short_4xx(suggester, tmp_path):
    """The suggester behind `fastadapt.monitoring.server`: nested JSON, oversized bodies, 20 at once."""

    def good() -> None:
        response = invoke(base, {"dataframe_split": {"columns": ["text"], "data": [["where is my parcel"]]}})
        assert response.status_code == 200, response.text[:300]
        assert response.json()["predictions"][0]["predicted_intent"] == "delivery"

    with bounded_server(f"models:/{NAME}/1", suggester["uri"], tmp_path / "server.log") as base:
        good()
        timings = check_bad_requests(base, good)
    print(f"bounded suggester server: {timings}")
