"""Answer suggestion adapted to services no training dialogue uses (fastadapt.dialogue.new_services).

The fixture (tests/fixtures/dialogue/new_services) is a hand-written JSON-lines export: the train
split holds only the service Shop_1; the test split one more Shop_1 conversation and two new
services, Bike_1 (RentBike, ReturnBike: three conversations each) and Pizza_1 (OrderPizza: three).
Conversation p1 opens with a pizza order and later asks for a bike, and b1 / p1 have a second
user turn of their intent, so the intent-opening pairs are 13 of the 15 user turns.

Features are either the CPU-light hashing vectors (word uni/bigrams), which make every
prototype prediction below checkable by hand, or a tiny BERT's, for the real encoding path.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fastadapt.config import ConfigError
from fastadapt.dialogue.new_services import (
    NewServiceSettings,
    TextFeatures,
    draw_metrics,
    encoder_features,
    evaluate_new_services,
    opening_pairs,
    threshold_table,
)
from fastadapt.dialogue.serving import hashing_embed
from fastadapt.dialogue.suggest import AnswerSuggester
from fastadapt.models.backbones import load_backbone, train_wordpiece_tokenizer
from fastadapt.models.baselines import TfidfLogisticRegression
from fastadapt.readers.dialogue import first_utterance_intents, read_dialogue_jsonl
from fastadapt.tasks.kshot import unseen_class_kshot_sets

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dialogue" / "new_services"
NEW_INTENTS = ["Bike_1.RentBike", "Bike_1.ReturnBike", "Pizza_1.OrderPizza"]


@pytest.fixture(scope="module")
def turns() -> pd.DataFrame:
    files = {path.name: path.read_bytes() for path in FIXTURE.iterdir()}
    return read_dialogue_jsonl(files, {"splits": {"train": "train.jsonl", "test": "test.jsonl"}}).rows


@pytest.fixture(scope="module")
def splits(turns) -> pd.DataFrame:
    """The domain's splits table as the features pipeline writes it: one row per conversation."""
    return first_utterance_intents(turns).assign(split=lambda frame: frame["origin"])


@pytest.fixture(scope="module")
def test_rows(splits) -> pd.DataFrame:
    return splits[splits["split"] == "test"][["row_id", "text", "label", "conversation_id", "service"]]


@pytest.fixture(scope="module")
def tiny_backbone(splits, turns):
    torch.set_num_threads(1)
    tokenizer = train_wordpiece_tokenizer(turns["text"].tolist(), vocab_size=200, min_frequency=1)
    return load_backbone("tiny-bert", tokenizer=tokenizer, seed=0, config_overrides={
        "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64})


def settings(**overrides) -> NewServiceSettings:
    block = {"strategy": "prototype", "ks": [1], "seeds": [0], "abstain_below": 0.0, "example_k": 1, **overrides}
    return NewServiceSettings.from_params({"new_services": block, "neighbours": 5, "top_n": 2})


def hand_draw(rows: pd.DataFrame, support_ids: set[int]) -> pd.DataFrame:
    return pd.DataFrame({"k": 1, "seed": 0, "row_id": rows["row_id"].to_numpy(), "label": rows["label"].to_numpy(),
                         "role": np.where(rows["row_id"].isin(support_ids), "support", "query")})


def test_opening_pairs_keep_the_turn_that_opens_each_intent(turns):
    pairs = opening_pairs(turns)
    assert len(pairs) == 13  # 15 user turns less "the central station" and "pepperoni please"
    p1 = pairs[pairs["conversation_id"] == "test:p1"]
    assert p1["user_text"].tolist() == ["order a large pizza", "also rent me a bike"]
    assert p1["intent"].tolist() == ["Pizza_1.OrderPizza", "Bike_1.RentBike"]


def test_support_conversations_never_appear_in_the_query(test_rows, turns, tiny_backbone):
    """Section 5 draws on the new services: for every draw, no query conversation is a support
    one, and every suggested reply comes from a support conversation."""
    unseen = test_rows[test_rows["service"] != "Shop_1"]
    draws = unseen_class_kshot_sets(pd.concat([unseen.assign(split="test"),
                                               test_rows.iloc[:0].assign(split="train")]), [1, 2], [0, 1], "service")
    # A second row of support conversation b1 marked query (as a table of every user turn would
    # have it): it must leave the query too.
    extra = pd.DataFrame({"row_id": [8], "text": ["the central station"], "label": ["Bike_1.RentBike"],
                          "conversation_id": ["test:b1"], "service": ["Bike_1"]})
    rows = pd.concat([unseen, extra], ignore_index=True)
    forced = pd.DataFrame({"k": 2, "seed": 1, "row_id": [8], "label": ["Bike_1.RentBike"], "role": ["query"]})
    draws = pd.concat([draws, forced], ignore_index=True)
    assert set(draws.loc[(draws["k"] == 2) & (draws["seed"] == 1) & (draws["role"] == "support"), "row_id"]) >= {6}

    chosen = settings(ks=[1, 2], seeds=[0, 1], example_k=1)
    metrics, predictions = evaluate_new_services(rows, draws, opening_pairs(turns), tiny_backbone, chosen,
                                                 encoder_features(tiny_backbone, chosen))
    conversation = rows.set_index("row_id")["conversation_id"]
    for (k, seed), draw in draws.groupby(["k", "seed"]):
        support = set(conversation.loc[draw.loc[draw["role"] == "support", "row_id"]])
        query = predictions[(predictions["k"] == k) & (predictions["seed"] == seed)]
        assert len(support) == 3 * k and not support & set(query["conversation_id"])
        assert len(query) == 9 - 3 * k  # every other new-service conversation is a query, once
    assert 8 not in set(predictions["row_id"])
    assert metrics["n_query"].tolist() == [6, 6, 3, 3] and metrics["n_classes"].eq(3).all()
    assert set(predictions["predicted"]) <= set(NEW_INTENTS)


def test_lexical_prototypes_answer_as_worked_out_by_hand(test_rows, turns, tiny_backbone):
    """Support b1 "I want to rent a bike today", r2 "return the rented bike", p3 "can you deliver
    a pizza". Hashing features count words of two letters or more and their bigrams; a query goes
    to the support it shares most of them with (cosine). "I want to order pizza for dinner" shares
    want, to and "want to" with b1 (3 / sqrt(11 * 9) = 0.30) but only pizza with p3 (1 / sqrt(11 * 7)
    = 0.11): the one miss. "I need to return my bike": to, bike with b1 (2 / 9 = 0.22) against
    return, bike with r2 (2 / sqrt(9 * 7) = 0.25): right, narrowly. The other four are plain."""
    unseen = test_rows[test_rows["service"] != "Shop_1"]
    support = {6, 16, 28}  # b1, r2, p3 (row ids of their opening turns)
    chosen = settings(abstain_below=0.0)
    metrics, predictions = evaluate_new_services(unseen, hand_draw(unseen, support), opening_pairs(turns),
                                                 tiny_backbone, chosen, TextFeatures(hashing_embed))
    by_text = dict(zip(unseen.set_index("row_id").loc[predictions["row_id"], "text"], predictions["predicted"]))
    wrong = {text: intent for text, intent in by_text.items()
             if intent != unseen.set_index("text").loc[text, "label"]}
    assert wrong == {"I want to order pizza for dinner": "Bike_1.RentBike"}
    row = metrics.iloc[0]
    assert row["accuracy"] == pytest.approx(5 / 6) and row["reply_gold_rate"] == pytest.approx(5 / 6)
    assert row["bank_pairs"] == 3 and row["abstention_rate"] == 0
    # Replies come from the predicted intent's support pairs only.
    assert predictions["n_replies"].eq(1).all()
    assert predictions["replies_from_gold"].tolist() == predictions["correct"].tolist()


def test_abstention_below_the_threshold(test_rows, turns, tiny_backbone):
    unseen = test_rows[test_rows["service"] != "Shop_1"]
    draw = hand_draw(unseen, {12, 18, 28})
    _, predictions = evaluate_new_services(unseen, draw, opening_pairs(turns), tiny_backbone, settings(),
                                           TextFeatures(hashing_embed))
    threshold = float(np.median(predictions["confidence"]))
    metrics, again = evaluate_new_services(unseen, draw, opening_pairs(turns), tiny_backbone,
                                           settings(abstain_below=threshold), TextFeatures(hashing_embed))
    below = predictions["confidence"] < threshold
    assert 0 < below.sum() < len(predictions)
    assert metrics.iloc[0]["abstention_rate"] == pytest.approx(below.mean())
    assert metrics.iloc[0]["accuracy"] == pytest.approx(predictions["correct"].mean())  # abstention hides, not changes
    assert metrics.iloc[0]["reply_gold_rate"] == pytest.approx((predictions["replies_from_gold"] & ~below).mean())
    pd.testing.assert_frame_equal(predictions, again)

    # The suggester itself: under the threshold, no replies and `abstained`.
    bank = pd.DataFrame({"intent": ["a", "b"], "user_text": ["rent a bike", "order a pizza"],
                         "agent_text": ["Which station?", "Which toppings?"]})
    classifier = TfidfLogisticRegression().fit(bank["user_text"].tolist(), bank["intent"].tolist())
    vectors = hashing_embed(bank["user_text"])
    suggester = AnswerSuggester(classifier, hashing_embed, bank, vectors, hashing_embed(bank["agent_text"]),
                                abstain_below=0.9)
    probability = classifier.predict_proba(["rent a bike"]).max()
    assert probability < 0.9
    [unsure] = suggester.suggest(["rent a bike"])
    assert unsure["abstained"] and unsure["replies"] == [] and unsure["intent_probability"] == pytest.approx(probability)
    suggester.abstain_below = probability - 1e-9
    [sure] = suggester.suggest(["rent a bike"])
    assert not sure["abstained"] and [r["reply"] for r in sure["replies"]] == ["Which station?"]


def test_draw_metrics_and_threshold_table_by_hand():
    predictions = pd.DataFrame({
        "k": 1, "seed": [0, 0, 0, 0, 1, 1],
        "confidence": [0.9, 0.8, 0.4, 0.3, 0.7, 0.2],
        "correct": [True, False, True, False, True, True],
        "replies_from_gold": [True, False, True, False, False, True],
    })
    seed0 = draw_metrics(predictions[predictions["seed"] == 0], 0.5)
    assert seed0 == pytest.approx({"abstain_below": 0.5, "accuracy": 0.5, "abstention_rate": 0.5,
                                   "answered_accuracy": 0.5, "wrong_answer_rate": 0.25, "reply_gold_rate": 0.25,
                                   "answered_reply_gold_rate": 0.5})
    assert np.isnan(draw_metrics(predictions, 0.95)["answered_accuracy"])
    table = threshold_table(predictions, thresholds=[0.0, 0.5]).set_index("abstain_below")
    # seed 1 at 0.5: one answered, right, its replies not from the gold intent (a bank gap).
    assert table.loc[0.5, "coverage"] == pytest.approx((0.5 + 0.5) / 2)
    assert table.loc[0.5, "answered_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert table.loc[0.5, "reply_gold_rate"] == pytest.approx((0.25 + 0.0) / 2)
    assert table.loc[0.0, "utility"] == pytest.approx(1 - 3 * (0.5 + 0.0) / 2)
    assert table.loc[0.5, "utility"] == pytest.approx(0.5 - 3 * (0.25 + 0.0) / 2)


@pytest.mark.parametrize("block, named", [
    ({"strategy": "protoype"}, "answer_suggestion.new_services.strategy"),
    ({"abstain_below": 1.5}, "answer_suggestion.new_services.abstain_below"),
    ({"ks": [0]}, "answer_suggestion.new_services.ks"),
    ({"ks": [1], "example_k": 5}, "answer_suggestion.new_services.example_k"),
    ({"treshold": 0.3}, "unknown setting(s) ['treshold']"),
])
def test_bad_settings_name_the_parameter(block, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        NewServiceSettings.from_params({"new_services": block})


def test_draws_the_features_pipeline_did_not_make_are_refused(test_rows, turns, tiny_backbone):
    unseen = test_rows[test_rows["service"] != "Shop_1"]
    with pytest.raises(ConfigError, match=r"no support draws for \(k, seed\) \[\(1, 3\)\]"):
        evaluate_new_services(unseen, hand_draw(unseen, {12, 18, 28}), opening_pairs(turns), tiny_backbone,
                              settings(seeds=[0, 3]), TextFeatures(hashing_embed))


# ---- the pipeline's nodes, with the pipeline's real encoder (MiniLM, offline) ----------------------

NODE_PARAMS = {"backbone": "minilm-l6", "neighbours": 5, "top_n": 2, "max_pairs_per_intent": 60, "examples": 10,
               "batch_size": 16, "device": "cpu", "seed": 0,
               "new_services": {"strategy": "prototype", "ks": [1], "seeds": [0, 1], "example_k": 1,
                                "calibration_split": "test", "abstain_below": 0.4}}


@pytest.fixture(scope="module")
def node_outputs(splits, turns):
    from fastadapt.pipelines.answer_suggestion.nodes import (
        build_reply_bank,
        calibrate_abstention,
        embed_reply_bank,
        evaluate_unseen_services,
        suggest_for_test_messages,
    )

    params = {**NODE_PARAMS, "bank_splits": ["train"]}
    draws = unseen_class_kshot_sets(splits, [1], [0, 1], "service")
    bank = build_reply_bank(turns, params)
    classifier = TfidfLogisticRegression().fit(bank["user_text"].tolist(), bank["intent"].tolist())
    examples = suggest_for_test_messages(classifier, bank, embed_reply_bank(bank, params), splits, turns, draws, params)
    metrics, predictions = evaluate_unseen_services(turns, splits, draws, params)
    return {"draws": draws, "examples": examples, "metrics": metrics, "predictions": predictions,
            "calibration": calibrate_abstention(turns, splits, params)}


def test_examples_go_to_the_suggester_of_their_service(node_outputs, splits):
    draw = node_outputs["draws"]
    support = set(draw.loc[(draw["k"] == 1) & (draw["seed"] == 0) & (draw["role"] == "support"), "row_id"])
    support_texts = set(splits.set_index("row_id").loc[sorted(support), "text"])
    examples = node_outputs["examples"]
    assert len(examples) == 7 and not support_texts & {e["message"] for e in examples}
    assert {e["service"] == "Shop_1" for e in examples} == {True, False}  # all 10 - 3 support: both routes
    for example in examples:
        if example["service"] == "Shop_1":  # a logged service: the trained classifier, no abstention
            assert example["suggester"] == "trained on the logged services" and example["abstain_below"] is None
            assert example["predicted_intent"].startswith("Shop_1.")
        else:
            assert example["suggester"].startswith("adapted to the new services (prototype, k=1, seed 0)")
            assert example["predicted_intent"] in NEW_INTENTS and example["abstain_below"] == 0.4
            assert example["abstained"] == (example["intent_probability"] < 0.4)
            assert (example["replies"] == []) if example["abstained"] else len(example["replies"]) >= 1


def test_nodes_measure_the_new_services_and_calibrate(node_outputs):
    metrics, predictions = node_outputs["metrics"], node_outputs["predictions"]
    assert metrics[["k", "seed"]].values.tolist() == [[1, 0], [1, 1]] and metrics["n_query"].eq(6).all()
    assert set(predictions["label"]) == set(NEW_INTENTS)  # the seen service Shop_1 is not a new task
    for (_, seed), rows in predictions.groupby(["k", "seed"]):
        row = metrics[metrics["seed"] == seed].iloc[0]
        assert row["accuracy"] == pytest.approx(rows["correct"].mean())
        assert row["abstention_rate"] == pytest.approx((rows["confidence"] < 0.4).mean())
    calibration = node_outputs["calibration"]
    # The calibration split here is the fixture's test split: 4 intents, all its services as new.
    assert calibration["n_classes"].eq(4).all() and calibration["split"].eq("test").all()
    assert calibration["coverage"].is_monotonic_decreasing and calibration["coverage"].iloc[0] == 1.0


def test_the_report_shows_the_new_service_figures_and_the_threshold(node_outputs):
    from fastadapt.pipelines.reporting.nodes import summary_report

    report = summary_report("test", answer_suggestions=node_outputs["examples"],
                            new_service_metrics=node_outputs["metrics"],
                            abstention_calibration=node_outputs["calibration"])
    section = report[report.index("## Answer suggestions"):]
    assert "Services no training dialogue uses" in section and "abstains under intent probability 0.40" in section
    accuracy = node_outputs["metrics"]["accuracy"]
    assert f"{accuracy.mean():.3f} ± {accuracy.std(ddof=1):.3f}" in section
    assert "measured on the `test` split" in section and "configured 0.40" in section
    assert section.count("\n- **") == 7
