"""Backbones by name: tiny-bert from a config and our own WordPiece vocabulary, directories that
reload to the same outputs, and one-line errors for names that cannot be loaded."""

from __future__ import annotations

import pytest
import torch

from fastadapt.config import ConfigError
from fastadapt.errors import UserInputError
from fastadapt.models.backbones import (
    SPECIAL_TOKENS,
    Backbone,
    BackboneError,
    SavedTokenizer,
    load_backbone,
    named_backbone,
    train_wordpiece_tokenizer,
)

from tests.models.conftest import CORPUS, TINY


def test_wordpiece_vocabulary_is_sorted_and_wraps_texts_in_cls_sep(wordpiece):
    vocab = wordpiece.get_vocab()
    assert [vocab[token] for token in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    others = sorted((i, t) for t, i in vocab.items() if t not in SPECIAL_TOKENS)
    assert [t for _, t in others] == sorted(t for _, t in others)  # re-listed in sorted order
    ids = wordpiece("refund missing")["input_ids"]
    assert ids[0] == vocab["[CLS]"] and ids[-1] == vocab["[SEP]"]
    assert wordpiece.convert_ids_to_tokens(ids[1:-1]) == ["refund", "missing"]
    assert wordpiece.pad_token == "[PAD]" and wordpiece.mask_token == "[MASK]"


def test_wordpiece_training_twice_on_the_same_texts_gives_the_same_vocabulary(wordpiece):
    runs = [train_wordpiece_tokenizer(CORPUS, vocab_size=200, min_frequency=1).get_vocab() for _ in range(5)]
    assert all(vocab == wordpiece.get_vocab() for vocab in runs)
    # The continuing pieces handed to the trainer stay out of the added (special) tokens.
    assert set(wordpiece.all_special_tokens) == set(SPECIAL_TOKENS)
    assert not any(token.startswith("##") for token in wordpiece.added_tokens_encoder)


def test_wordpiece_vocabularies_agree_across_processes(wordpiece):
    import hashlib
    import json
    import subprocess
    import sys

    script = ("import hashlib, json, sys; from fastadapt.models.backbones import train_wordpiece_tokenizer; "
              f"corpus = {CORPUS!r}; vocab = train_wordpiece_tokenizer(corpus, vocab_size=200, min_frequency=1)"
              ".get_vocab(); print(hashlib.sha1(json.dumps(vocab, sort_keys=True).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              timeout=120).stdout.strip() for _ in range(3)}
    assert digests == {hashlib.sha1(json.dumps(wordpiece.get_vocab(), sort_keys=True).encode()).hexdigest()}


def test_tiny_bert_follows_its_seed_and_overrides(wordpiece, tiny_backbone):
    assert tiny_backbone.name == "tiny-bert" and tiny_backbone.hidden_size == TINY["hidden_size"]
    assert tiny_backbone.model.config.vocab_size == len(wordpiece)
    assert tiny_backbone.model.config.num_hidden_layers == 1 and tiny_backbone.model.pooler is None
    same = load_backbone("tiny-bert", tokenizer=wordpiece, seed=0, config_overrides=TINY)
    other = load_backbone("tiny-bert", tokenizer=wordpiece, seed=1, config_overrides=TINY)
    first, second, third = (b.model.state_dict() for b in (tiny_backbone, same, other))
    assert all(torch.equal(first[k], second[k]) for k in first) and first.keys() == second.keys()
    assert not torch.equal(first["embeddings.word_embeddings.weight"], third["embeddings.word_embeddings.weight"])


def test_a_saved_backbone_reloads_by_directory_with_its_name_and_outputs(tiny_backbone, tmp_path):
    tiny_backbone.save_directory(tmp_path / "backbone")
    assert (tmp_path / "backbone" / "model.safetensors").is_file()
    assert not list((tmp_path / "backbone").glob("*.bin"))  # no pickled weights
    for loaded in (Backbone.load_directory(tmp_path / "backbone"), load_backbone(str(tmp_path / "backbone"))):
        inputs = tiny_backbone.tokenizer(CORPUS[:2], padding=True, return_tensors="pt")
        with torch.inference_mode():
            expected = tiny_backbone.model.eval()(**inputs).last_hidden_state
            got = loaded.model.eval()(**inputs).last_hidden_state
        torch.testing.assert_close(got, expected)
    assert Backbone.load_directory(tmp_path / "backbone").name == "tiny-bert"
    assert load_backbone(str(tmp_path / "backbone")).name == str(tmp_path / "backbone")


def test_a_saved_tokenizer_reloads_to_the_same_ids(wordpiece, tmp_path):
    SavedTokenizer(wordpiece).save_directory(tmp_path / "tok")
    loaded = SavedTokenizer.load_directory(tmp_path / "tok").tokenizer
    assert loaded(CORPUS)["input_ids"] == wordpiece(CORPUS)["input_ids"]


@pytest.mark.parametrize(("name", "message"), [
    ("tiny-bert", "backbone 'tiny-bert' needs the WordPiece tokeniser"),
    ("no-such-owner/no-such-model", "backbone 'no-such-owner/no-such-model' could not be loaded"),
    ("not a model!", r"backbone 'not a model!' is unknown; use \['minilm-l6', 'tiny-bert'\]"),
])
def test_a_backbone_that_cannot_be_loaded_is_one_clear_user_error(name, message, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never the network
    with pytest.raises(BackboneError, match=message) as error:
        load_backbone(name)
    assert isinstance(error.value, UserInputError) and "\n" not in str(error.value)


def test_named_backbone_names_the_parameter_when_an_input_is_missing():
    with pytest.raises(ConfigError, match=r"^adaptation.backbone is 'pretrained': run `kedro run --pipeline pretraining` first$"):
        named_backbone("pretrained", "adaptation.backbone")
    with pytest.raises(ConfigError, match=r"^meta_training.backbone is 'tiny-bert', which needs the WordPiece"):
        named_backbone("tiny-bert", "meta_training.backbone")
    with pytest.raises(ConfigError, match=r"^task.model: backbone 'no such model!' is unknown"):
        named_backbone("no such model!", "task.model")


def test_named_backbone_copies_the_pretrained_backbone(tiny_backbone):
    pretrained = tiny_backbone
    fresh = named_backbone("pretrained", "adaptation.backbone", pretrained_backbone=pretrained)
    assert fresh.model is not pretrained.model
    assert all(torch.equal(a, b) for a, b in zip(fresh.model.state_dict().values(),
                                                  pretrained.model.state_dict().values(), strict=True))
