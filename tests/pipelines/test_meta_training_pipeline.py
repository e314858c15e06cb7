"""`kedro run --pipeline meta_training` on a tiny synthetic Banking77 in a throw-away project.

Twelve keyword-separable intent classes stand in for Banking77, with a class split of 4 train,
4 valid and 4 test classes; the backbone is a one-layer tiny-bert on a WordPiece tokeniser learnt
from those texts, so meta-training, meta-test, learning curves and the report take seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from tests.conftest import end_session_state, make_project

from fastadapt.config import ConfigError

pytestmark = pytest.mark.slow

CLASSES = {f"intent_{i:02d}": [f"word{i}a", f"word{i}b", f"word{i}c"] for i in range(12)}
SPLIT = {"train": list(CLASSES)[:4], "valid": list(CLASSES)[4:8], "test": list(CLASSES)[8:]}
FILLER = ["my", "the", "card", "please", "help", "with", "a", "today", "bank", "account"]
TINY = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
        "max_position_embeddings": 64}
META = {
    "backbone": "tiny-bert",
    "class_splits": ["01"],
    "algorithms": ["protonet"],
    "meta": {"max_length": 16, "n_way": 3, "k_shot": 2, "n_query": 2, "outer_lr": 1.0e-3, "meta_batch_size": 1,
             "max_steps": 4, "eval_every": 2, "eval_episodes": 3, "early_stop_patience": None,
             "checkpoint_every": 2, "checkpoint_dir": "data/06_models/meta_training/checkpoints", "seed": 0,
             "device": "cpu", "num_threads": 1, "log_every": 1,
             "sources": {"banking77": 1.0, "smlmt": 0.5}},
    "sources": {"banking77": {"kind": "class_split"},
                "smlmt": {"kind": "smlmt", "min_word_count": 4, "exclude_sources": ["customer_intent"]}},
    "evaluation": {"strategy": "meta", "max_episodes": 4, "settings": None, "batch_size": 32},
    "curves": {"domains": None, "ks": [1, 2], "seeds": [0, 1], "max_test_rows": 20,
               "arms": ["random_init", "pretrained", "meta_trained", "tfidf"],
               "random_init": {"backbone": "tiny-bert", "strategy": "prototype"},
               "pretrained": {"backbone": "tiny-bert"}, "strategy": "prototype", "metric": "cosine",
               "batch_size": 32, "seed": 0},
}
PARAMETERS = {"seed": 42, "test_origins": ["test"],
              "domains": {"customer_intent": {"kind": "text_classification", "raw": "banking77"}}}


def intent_rows(per_class: int = 14) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    records = []
    for label, words in CLASSES.items():
        for i in range(per_class):
            tokens = list(rng.choice(FILLER, size=4)) + [str(rng.choice(words))]
            rng.shuffle(tokens)
            split = "test" if i < 4 else "validation" if i < 6 else "train"
            records.append((len(records), " ".join(tokens), label, split))
    return pd.DataFrame(records, columns=["row_id", "text", "label", "split"])


def meta_project(root, meta=META):
    from kedro.io.core import Version

    from fastadapt.datasets import ModelDirectoryDataset
    from fastadapt.models.backbones import SavedTokenizer, train_wordpiece_tokenizer
    from fastadapt.tasks.episodes import class_split_episodes
    from fastadapt.tasks.kshot import kshot_sets

    splits_folder = root / "class_splits" / "01"
    splits_folder.mkdir(parents=True)
    for part, classes in SPLIT.items():
        (splits_folder / f"{part}.txt").write_text("\n".join(classes) + "\n")
    project = make_project(root, {"banking77_class_splits": root / "class_splits"},
                           yaml.safe_dump(PARAMETERS, sort_keys=False))
    (project / "conf" / "base" / "parameters_meta_training.yml").write_text(yaml.safe_dump({"meta_training": meta}))
    features = project / "data" / "04_feature"
    rows = intent_rows()
    (features / "customer_intent").mkdir(parents=True)
    rows.to_parquet(features / "customer_intent" / "splits.parquet", index=False)
    kshot_sets(rows[rows["split"] == "train"], [1, 2], [0, 1]).to_parquet(
        features / "customer_intent" / "kshot_sets.parquet", index=False)
    episodes = pd.concat([class_split_episodes(rows, SPLIT["test"], 1, n_way, k, 2, 6, setting)
                          for setting, n_way, k in (("2way_1shot", 2, 1), ("4way_2shot", None, 2))])
    episodes.to_parquet(features / "class_split_episodes.parquet", index=False)
    pool = pd.DataFrame({"text": rows["text"], "source": np.where(rows.index % 2, "stream:cnbc", "customer_intent")})
    pool.to_parquet(features / "unlabelled_pool.parquet", index=False)
    tokenizer = train_wordpiece_tokenizer(rows["text"], vocab_size=120, min_frequency=1)
    ModelDirectoryDataset(str(project / "data" / "06_models" / "wordpiece_tokenizer"),
                          version=Version(None, None)).save(SavedTokenizer(tokenizer))
    return project


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One torch thread; tiny-bert gets the test's tiny configuration."""
    import fastadapt.models.backbones as backbones

    monkeypatch.setattr(backbones, "TINY_BERT_CONFIG", {**backbones.TINY_BERT_CONFIG, **TINY})
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_meta_training_writes_the_model_records_results_curves_and_report(tmp_path, run_project):
    project = meta_project(tmp_path)
    run_project(project, "meta_training")

    from kedro.io.core import Version

    from fastadapt.adapt import adapt
    from fastadapt.datasets import ModelDirectoryDataset
    from fastadapt.meta.saved import MetaLearnedModel

    model = ModelDirectoryDataset(str(project / "data" / "06_models" / "meta_learner"),
                                  version=Version(None, None)).load()
    assert isinstance(model, MetaLearnedModel) and model.config.algorithm == "protonet"
    assert model.info["class_split"] == "01" and model.info["run"] == "protonet_s01"
    assert model.info["sources"] == {"banking77": 1.0, "smlmt": 0.5}
    predictor = adapt(model, pd.DataFrame({"text": ["word0a please", "word1a today"], "label": ["a", "b"]}))
    assert list(predictor.predict(["word0a my card"])) in (["a"], ["b"])

    reports = project / "data" / "08_reporting"
    history = pd.read_csv(reports / "meta_training" / "protonet_s01" / "history.csv")
    assert history["step"].tolist() == [0, 1, 2, 3, 4]
    assert history["val_accuracy"].notna().tolist() == [True, False, True, False, True]
    assert (reports / "meta_training" / "protonet_s01" / "validation_curve.png").stat().st_size > 0
    runs = pd.read_csv(reports / "meta_training" / "runs.csv")
    assert runs["run"].tolist() == ["protonet_s01"] and runs["selected"].tolist() == [True]

    results = pd.concat([pd.read_parquet(p) for p in (project / "data" / "07_model_output" / "meta_training")
                         .glob("*/episode_results.parquet")])
    counts = results.groupby(["method", "setting"]).size().to_dict()
    assert counts == {(m, s): 4 for m in ("frozen_prototypes", "protonet", "tfidf")
                      for s in ("2way_1shot", "4way_2shot")}
    summary = pd.read_csv(reports / "meta_training" / "episode_summary.csv", dtype={"split": str})
    assert set(summary["split"]) == {"01", "mean"}
    assert summary[["accuracy", "ci95"]].notna().all().all()
    diffs = pd.read_csv(reports / "meta_training" / "paired_differences.csv", dtype={"split": str})
    assert set(diffs["baseline"]) == {"frozen_prototypes", "tfidf"} and set(diffs["method"]) == {"protonet"}

    curves = pd.read_csv(reports / "meta_training" / "curves" / "customer_intent.csv")
    assert set(curves["model"]) == {"random_init", "pretrained", "meta_trained", "tfidf"}
    assert len(curves) == 4 * 2 * 2 and (curves["n_test"] == 20).all()
    assert (reports / "meta_training" / "curves" / "customer_intent.png").stat().st_size > 0

    report = (reports / "meta_learning.md").read_text()
    assert report.startswith("# Meta-learning: does learning to learn help?")
    assert "**Quick configuration.**" in report and "4 test episodes per setting and split" in report
    assert "## Verdict" in report and "**protonet** against the same encoder without meta-training" in report
    assert "### 4way_2shot" in report and "frozen_prototypes" in report and "95 % CI" in report
    assert "### customer_intent" in report and "meta-trained vs pretrained-only" in report
    assert "meta-training `protonet_s01`" in report

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("fastadapt-test").experiment_id])[0]
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "meta_training.protonet_s01.val_accuracy")]
    assert sorted(steps) == [0, 2, 4]
    assert "meta_test.protonet.2way_1shot.split_01.accuracy" in run.data.metrics


def test_a_rerun_resumes_from_the_checkpoints_instead_of_training_again(tmp_path, run_project):
    project = meta_project(tmp_path)
    run_project(project, "meta_training", node_names=["meta_training.protonet_s01.meta_train_node"])
    first = pd.read_csv(project / "data" / "08_reporting" / "meta_training" / "protonet_s01" / "history.csv")
    checkpoints = list((project / "data" / "06_models" / "meta_training" / "checkpoints").glob("protonet_s01-*"))
    assert len(checkpoints) == 1 and sorted(p.name for p in checkpoints[0].iterdir())
    run_project(project, "meta_training", node_names=["meta_training.protonet_s01.meta_train_node"])
    second = pd.read_csv(project / "data" / "08_reporting" / "meta_training" / "protonet_s01" / "history.csv")
    pd.testing.assert_frame_equal(first.drop(columns="seconds"), second.drop(columns="seconds"))


def test_a_bad_algorithm_stops_the_run_with_the_parameter_and_allowed_values(tmp_path, run_project):
    project = meta_project(tmp_path, {**META, "algorithms": ["protonet", "matching_networks"]})
    with pytest.raises(ConfigError, match=r"meta_training\.algorithms names 'matching_networks'; allowed: "
                                          r"\['protonet', 'maml', 'fomaml', 'reptile', 'anil'\]"):
        run_project(project, "meta_training")
    end_session_state()


BROAD = {"release": True, "folds": ["customer_intent"], "n_way": [2, 3], "k_shot": [1, 2], "label_names": True,
         "weights": {"smlmt": 1.0}, "smlmt": {"min_word_count": 4},
         "meta": {"max_length": 16, "n_way": 3, "k_shot": 2, "n_query": 2, "outer_lr": 1.0e-3, "meta_batch_size": 1,
                  "max_steps": 2, "eval_every": 1, "eval_episodes": 2, "seed": 0, "distance": "cosine",
                  "log_every": 1},
         "evaluation": {"strategies": ["prototype", "finetune_head"], "ks": [1, 2], "seeds": [0, 1],
                        "pretrained": "tiny-bert"}}


def test_broad_meta_training_releases_every_source_and_scores_the_left_out_fold(tmp_path, run_project):
    project = meta_project(tmp_path, {**META, "curves": {**META["curves"], "domains": []}, "broad": BROAD})
    run_project(project, "meta_training")

    from kedro.io.core import Version

    from fastadapt.datasets import ModelDirectoryDataset

    model = ModelDirectoryDataset(str(project / "data" / "06_models" / "meta_learner"),
                                  version=Version(None, None)).load()
    assert model.info["run"] == "broad_all" and model.info["sources"] == ["customer_intent", "smlmt"]
    fold = ModelDirectoryDataset(str(project / "data" / "06_models" / "meta_training" / "broad_customer_intent"),
                                 version=None).load()
    assert fold.info["sources"] == ["smlmt"] and "customer_intent" in fold.info["left_out"]
    reports = project / "data" / "08_reporting"
    results = pd.read_csv(reports / "meta_training" / "lodo" / "customer_intent.csv")
    assert set(zip(results["model"], results["strategy"])) == {
        ("meta_trained", "prototype"), ("meta_trained", "finetune_head"), ("pretrained", "prototype"),
        ("pretrained", "finetune_head"), ("tfidf", "tfidf")}
    assert (results["n_test"] == 48).all() and len(results) == 5 * 4
    diffs = pd.read_csv(reports / "meta_training" / "lodo_differences.csv")
    assert set(diffs["against"]) == {"pretrained", "tfidf"} and (diffs["n_seeds"] == 2).all()
    report = (reports / "meta_learning.md").read_text()
    assert "## Leave one domain out" in report and "meta_training/lodo.png" in report
    assert (reports / "meta_training" / "lodo.png").stat().st_size > 0
    runs = pd.read_csv(reports / "meta_training" / "runs.csv")
    assert runs.loc[runs["selected"], "run"].tolist() == ["broad_all"]


NER_SENTENCES = [(["word0a", "met", "word1a", "in", "word2a", "."], ["B-PER", "O", "B-PER", "O", "B-LOC", "O"]),
                 (["word2a", "and", "word3a", "word3b", "."], ["B-LOC", "O", "B-ORG", "I-ORG", "O"])] * 4
CROSSNER_SENTENCES = [(["word0b", "wrote", "word1b", "word1c", "."], ["B-person", "O", "B-algorithm", "I-algorithm", "O"]),
                      (["word2b", "uses", "word1b", "."], ["B-location", "O", "B-algorithm", "O"])]


def test_meta_training_releases_an_ner_source_tagger_that_never_sees_held_out_types(tmp_path, run_project):
    ner_source = {"domain": "ner", "held_out": ["ORG"],
                  "adaptation": {"strategy": "full", "max_length": 16, "token_contrastive": {"weight": 1.0, "dim": 8},
                                 "training": {"max_steps": 2, "batch_size": 2, "lr": 1.0e-3, "seed": 0}}}
    project = meta_project(tmp_path, {**META, "ner_source": ner_source})
    parameters = {**PARAMETERS, "domains": {**PARAMETERS["domains"], "ner": {"kind": "ner", "raw": "conll2003"}}}
    (project / "conf" / "base" / "parameters.yml").write_text(yaml.safe_dump(parameters, sort_keys=False))
    (project / "data" / "04_feature" / "ner").mkdir(parents=True)
    splits = pd.DataFrame({"row_id": range(len(NER_SENTENCES)), "tokens": [t for t, _ in NER_SENTENCES],
                           "tags": [g for _, g in NER_SENTENCES], "split": ["train"] * 6 + ["test"] * 2})
    splits.to_parquet(project / "data" / "04_feature" / "ner" / "splits.parquet", index=False)
    run_project(project, "meta_training", node_names=["meta_training.ner_source_tagger_node"])

    from kedro.io.core import Version

    from fastadapt.adapt import adapt
    from fastadapt.datasets import ModelDirectoryDataset

    tagger = ModelDirectoryDataset(str(project / "data" / "06_models" / "ner_source_tagger"),
                                   version=Version(None, None)).load()
    assert sorted(tagger.tags_) == ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    assert tagger.training["held_out"] == ["ORG"] and tagger.training["source"] == "ner train"
    assert tagger.training["source_sentences"] == 6 and tagger.training["steps"] == 2
    assert tagger.training["lr"] == 1.0e-3 and tagger.training["batch_size"] == 2
    predictor = adapt(tagger, splits[["tokens", "tags"]].head(2), "structshot")
    assert [len(p) for p in predictor.predict([["word0a", "met", "word3a"]])] == [3]


def test_the_ner_source_tagger_learns_other_ner_corpora_with_the_types_renamed(tmp_path, run_project):
    """`sources` (null: every NER corpus of meta_sources:) join the domain's train sentences, `source_repeat`
    times each; `type_names` renames the domain's types so that shared ones are one class; the
    `token_contrastive` objective reaches the fit; text meta-training never reads an NER corpus; a
    source that is no NER corpus stops the run."""
    ner_source = {"domain": "ner", "sources": None, "source_repeat": 3,
                  "type_names": {"PER": "person", "LOC": "location"}, "held_out": ["ORG"],
                  "adaptation": {"strategy": "full", "max_length": 16, "token_contrastive": {"weight": 1.0, "dim": 8},
                                 "training": {"max_steps": 2, "batch_size": 2, "lr": 1.0e-3, "seed": 0}}}
    project = meta_project(tmp_path, {**META, "ner_source": ner_source})
    parameters = {**PARAMETERS, "domains": {**PARAMETERS["domains"], "ner": {"kind": "ner", "raw": "conll2003"}},
                  "meta_sources": {"crossner_x": {"kind": "ner", "raw": "crossner_x", "split": {"method": "given"}}}}
    (project / "conf" / "base" / "parameters.yml").write_text(yaml.safe_dump(parameters, sort_keys=False))
    for name, sentences, split in (("ner", NER_SENTENCES, ["train"] * 6 + ["test"] * 2),
                                   ("crossner_x", CROSSNER_SENTENCES, ["train"] * 2)):
        (project / "data" / "04_feature" / name).mkdir(parents=True)
        pd.DataFrame({"row_id": range(len(sentences)), "tokens": [t for t, _ in sentences],
                      "tags": [g for _, g in sentences], "split": split}).to_parquet(
            project / "data" / "04_feature" / name / "splits.parquet", index=False)
    run_project(project, "meta_training", node_names=["meta_training.ner_source_tagger_node"])

    from kedro.io.core import Version

    from fastadapt.datasets import ModelDirectoryDataset

    tagger = ModelDirectoryDataset(str(project / "data" / "06_models" / "ner_source_tagger"),
                                   version=Version(None, None)).load()
    assert sorted(tagger.tags_) == ["B-algorithm", "B-location", "B-person", "I-algorithm", "I-location", "I-person",
                                   "O"]
    assert tagger.training["source"] == "ner train + crossner_x train x3"
    assert tagger.training["source_sentences"] == 6 + 2 * 3 and tagger.training["held_out"] == ["ORG"]
    assert tagger.training["token_contrastive"] == {"weight": 1.0, "dim": 8}  # CONTaiNER's objective was trained

    from fastadapt.pipelines.meta_training.pipeline import create_pipeline

    with_broad = {**parameters, "meta_training": {**META, "broad": {"release": True, "folds": []}}}
    broad = [n for n in create_pipeline(with_broad).nodes if n.name.endswith("broad_meta_train_node")]
    assert broad and not any("crossner_x.splits" in n.inputs for n in broad)
    wrong = {**with_broad, "meta_training": {**with_broad["meta_training"], "ner_source": {
        **ner_source, "sources": ["customer_intent"]}}}
    with pytest.raises(ConfigError, match=r"meta_training\.ner_source\.sources names \['customer_intent'\], which "
                                          r"are not NER corpora of meta_sources:; allowed: \['crossner_x'\], or null for all"):
        create_pipeline(wrong)
    end_session_state()


def test_a_frozen_source_tagger_recipe_stops_the_run_naming_the_parameter(tmp_path, run_project):
    ner_source = {"domain": "ner", "adaptation": {"strategy": "head", "training": {"max_steps": 2}}}
    project = meta_project(tmp_path, {**META, "ner_source": ner_source})
    with pytest.raises(ConfigError, match=r"meta_training\.ner_source\.adaptation\.strategy is 'head'; a source "
                                          r"tagger fine-tunes its encoder: full or lora"):
        run_project(project, "meta_training", node_names=["meta_training.ner_source_tagger_node"])
    end_session_state()
