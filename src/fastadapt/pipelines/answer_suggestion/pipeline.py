"""`kedro run --pipeline answer_suggestion`: suggested agent replies for new user messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline

from fastadapt.dialogue.serving import log_suggester_node
from fastadapt.dialogue.settings import AnswerSuggestionSettings
from fastadapt.pipelines.answer_suggestion.nodes import (
    build_reply_bank,
    calibrate_abstention,
    embed_reply_bank,
    evaluate_unseen_services,
    suggest_for_test_messages,
)
from fastadapt.pipelines.wiring import from_run_parameters


@from_run_parameters
def create_pipeline(parameters: Mapping[str, Any]) -> Pipeline:
    params = parameters.get("answer_suggestion")
    if not params or not parameters.get("dialogue_logs"):
        return Pipeline([])  # no dialogue logs configured: nothing to suggest from
    settings = AnswerSuggestionSettings.from_params(params, where="answer_suggestion")
    if settings.domain not in parameters["domains"]:
        return Pipeline([])
    domain, model = settings.domain, settings.classifier
    return Pipeline(
        [
            Node(build_reply_bank, ["dialogue_turns", "params:answer_suggestion"], "reply_bank",
                 name="build_reply_bank_node", tags=["cpu"]),
            Node(embed_reply_bank, ["reply_bank", "params:answer_suggestion"], "reply_bank_embeddings",
                 name="embed_reply_bank_node", tags=["gpu"]),
            Node(calibrate_abstention, ["dialogue_turns", f"{domain}.splits", "params:answer_suggestion"],
                 "abstention_calibration", name="calibrate_abstention_node", tags=["gpu"]),
            Node(
                evaluate_unseen_services,
                ["dialogue_turns", f"{domain}.splits", f"{domain}.unseen_kshot_sets", "params:answer_suggestion"],
                ["new_service_metrics", "new_service_predictions"],
                name="evaluate_unseen_services_node",
                tags=["gpu"],
            ),
            Node(
                suggest_for_test_messages,
                [f"{domain}.model.{model}", "reply_bank", "reply_bank_embeddings", f"{domain}.splits",
                 "dialogue_turns", f"{domain}.unseen_kshot_sets", "params:answer_suggestion"],
                "answer_suggestions",
                name="suggest_answers_node",
                tags=["gpu"],
            ),
            Node(
                log_suggester_node,
                [f"{domain}.model.{model}", "reply_bank", "reply_bank_embeddings", "params:answer_suggestion"],
                "answer_suggester_registration",
                name="register_answer_suggester_node",
                tags=["cpu"],
            ),
        ],
        tags=["answer_suggestion"],
    )
