"""Fit a task model from a backbone and labelled support data, with any `FITTED` strategy.

    from fastadapt.adaptation import AdaptationConfig, fit_classifier
    from fastadapt.models.backbones import load_backbone

    config = AdaptationConfig.from_params({"strategy": "prototype", "metric": "cosine"})
    model = fit_classifier(load_backbone("minilm-l6"), texts, labels, config)
    model.predict(["the bank raised its outlook"])

`fit_classifier` (texts, labels) and `fit_tagger` (IOB2-tagged sentences) do the work; the
entry point that picks one from a support table is `fastadapt.adapt.adapt`. The backbone passed
in is never modified: full fine-tuning and LoRA train a copy of its encoder. Frozen-encoder strategies (head, prototype)
accept features computed beforehand (`features=`), so a caller that fits many models on one
domain (every k-shot set) encodes the domain's texts once.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from fastadapt.adaptation.classifier import (
    EncoderClassifier,
    LinearHead,
    PooledClassifierModule,
    PrototypeHead,
    token_limit,
)
from fastadapt.adaptation.container import ContrastiveTaggerModule, contrastive_tagger_loss
from fastadapt.adaptation.contrastive import contrastive_tune
from fastadapt.adaptation.lora import inject_lora, merged_copy
from fastadapt.adaptation.ner import (
    CASING_CLASSES,
    IGNORE_INDEX,
    OTHER_CASING,
    EncoderTagger,
    TokenClassifierModule,
    casing_features,
    encode_words,
    subword_casing,
    subword_labels,
    tag_set,
    token_cross_entropy,
    word_features,
)
from fastadapt.adaptation.strategies import AdaptationConfig, AdaptStrategy
from fastadapt.models.backbones import Backbone
from fastadapt.models.batching import length_bucketed_batches, pad_batch, tokenize
from fastadapt.models.encoder import embed_texts
from fastadapt.models.training import unwrap as unwrap_model
from fastadapt.tasks.kshot import draw_kshot, draw_ner_kshot

log = logging.getLogger(__name__)


# ---- batch sources (fastadapt.models.training.BatchSource) -------------------------------------


class FeatureBatches:
    """Shuffled mini-batches of precomputed feature vectors; (epoch, index) fixes the batch."""

    def __init__(self, features: torch.Tensor, targets: torch.Tensor, batch_size: int, seed: int) -> None:
        self.features, self.targets = features, targets
        self.batch_size, self.seed = min(batch_size, len(targets)), seed
        self._epoch, self._order = -1, None

    def num_batches(self, epoch: int) -> int:
        return math.ceil(len(self.targets) / self.batch_size)

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = torch.from_numpy(np.random.default_rng([self.seed, epoch]).permutation(len(self.targets)))
        chosen = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        return {"features": self.features[chosen], "labels": self.targets[chosen],
                "attention_mask": torch.ones(len(chosen), 1, dtype=torch.long)}


class SequenceBatches:
    """Length-bucketed, shuffled batches of token id lists with a label per sequence (classes)
    or per subword (tags); the order depends only on (seed, epoch)."""

    def __init__(self, token_ids: list[list[int]], labels: list[Any], batch_size: int, seed: int,
                 pad_token_id: int, per_token: bool, casing: list[list[int]] | None = None) -> None:
        self.token_ids, self.labels, self.per_token, self.casing = token_ids, labels, per_token, casing
        self.batch_size, self.seed, self.pad_token_id = min(batch_size, len(token_ids)), seed, pad_token_id
        self.lengths = [len(ids) for ids in token_ids]
        self._epoch, self._batches = -1, []

    def num_batches(self, epoch: int) -> int:
        return math.ceil(len(self.token_ids) / self.batch_size)

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        if epoch != self._epoch:
            self._epoch = epoch
            seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
            self._batches = length_bucketed_batches(self.lengths, self.batch_size, shuffle=True, seed=seed)
        chosen = self._batches[index]
        return collate([self.token_ids[i] for i in chosen], [self.labels[i] for i in chosen], self.pad_token_id,
                       self.per_token, None if self.casing is None else [self.casing[i] for i in chosen])


def collate(token_ids: list[list[int]], labels: list[Any], pad_token_id: int, per_token: bool,
            casing: list[list[int]] | None = None) -> dict[str, torch.Tensor]:
    batch = pad_batch(token_ids, pad_token_id)
    if per_token:
        width = batch["input_ids"].shape[1]
        batch["labels"] = torch.tensor([list(row) + [IGNORE_INDEX] * (width - len(row)) for row in labels],
                                       dtype=torch.long)
        if casing is not None:
            batch["casing"] = torch.tensor([list(row) + [OTHER_CASING] * (width - len(row)) for row in casing],
                                           dtype=torch.long)
    else:
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
    return batch


def _feature_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch["features"]), batch["labels"])


def _sequence_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    extra = {"casing": batch["casing"]} if "casing" in batch else {}
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra)
    return token_cross_entropy(logits, batch["labels"])


def _mean_loss(model: nn.Module, batches: list[dict[str, torch.Tensor]], loss) -> float:
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        n = int((batch["labels"] != IGNORE_INDEX).sum())
        total += float(loss(model, batch)) * n
        count += n
    return total / max(count, 1)


def _training_config(config: AdaptationConfig, checkpoint_name: str | None):
    training = config.training
    if training is None:
        raise ValueError(f"strategy '{config.strategy}' needs a `training` block (a TrainingConfig)")
    if training.checkpoint_dir and checkpoint_name:
        # Each fit resumes only its own checkpoints.
        training = replace(training, checkpoint_dir=str(Path(training.checkpoint_dir) / checkpoint_name))
    return training


def _train(module: nn.Module, loss, batches, config: AdaptationConfig, checkpoint_name: str | None,
           validate, description: str, progress: bool) -> dict[str, Any]:
    from fastadapt.models.training import train_model

    training = _training_config(config, checkpoint_name)
    if validate is not None and not training.early_stop_patience:
        validate = None  # validation only pays for itself when it can stop the run
    threads = torch.get_num_threads()
    try:
        result = train_model(module, loss, batches, training, validate=validate, description=description,
                             progress=progress)
    finally:
        torch.set_num_threads(threads)  # `training.num_threads` holds for this fit only
    module.eval()
    return result.summary()


def _trainable_encoder(backbone: Backbone, config: AdaptationConfig) -> nn.Module:
    """A copy of the encoder to train: every weight (finetune_all) or LoRA adapters (finetune_lora)."""
    encoder = copy.deepcopy(backbone.model)
    encoder.train()
    if config.strategy is AdaptStrategy.FINETUNE_LORA:
        torch.manual_seed(config.training.seed)
        encoder = inject_lora(encoder, config.lora)
    else:
        for parameter in encoder.parameters():
            parameter.requires_grad_(True)
    return encoder


def _merged_backbone(backbone: Backbone, encoder: nn.Module, config: AdaptationConfig) -> Backbone:
    """The trained encoder as a plain backbone: LoRA adapters merged into the weights."""
    if config.strategy is AdaptStrategy.FINETUNE_LORA:
        encoder = merged_copy(encoder)
    encoder.eval()
    return Backbone(name=backbone.name, model=encoder, tokenizer=backbone.tokenizer)


# ---- support selection ---------------------------------------------------------------------------


def kshot_support(labels: Sequence[str], k: int, seed: int) -> list[int]:
    """Positions of a k-per-class set drawn as PROTOCOL.md section 2 says (`draw_kshot`); a class
    with fewer than k examples raises `KShotError` naming it and its count."""
    rows = pd.DataFrame({"row_id": np.arange(len(labels)), "label": [str(label) for label in labels]})
    return draw_kshot(rows, k, seed)


def ner_kshot_support(tag_lists: Sequence[Sequence[str]], k: int, seed: int) -> list[int]:
    """Positions of a greedy k-mentions-per-type support set (`draw_ner_kshot`, section 4)."""
    rows = pd.DataFrame({"row_id": np.arange(len(tag_lists)), "tags": [list(t) for t in tag_lists]})
    return draw_ner_kshot(rows, k, seed)


def _check_texts(texts: Sequence[str], labels: Sequence[Any]) -> tuple[list[str], list[str]]:
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, not a single string")
    texts, labels = list(texts), [str(label) for label in labels]
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels must have the same length; got {len(texts)} and {len(labels)}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}] must be a string; got {type(text).__name__} {text!r}")
    classes = sorted(set(labels))
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "no labels at all"
        raise ValueError(f"a classifier needs at least two classes in labels; found {found}")
    return texts, labels


# ---- classification ---------------------------------------------------------------------------


def fit_classifier(
    backbone: Backbone,
    texts: Sequence[str],
    labels: Sequence[Any],
    config: AdaptationConfig,
    *,
    features: np.ndarray | None = None,
    validation: tuple[Sequence[str], Sequence[Any]] | None = None,
    validation_features: np.ndarray | None = None,
    k: int | None = None,
    seed: int = 0,
    checkpoint_name: str | None = None,
    progress: bool = False,
) -> EncoderClassifier:
    """An `EncoderClassifier` fitted with `config.strategy` on (texts, labels).

    features: pooled, un-normalised encoder features of `texts` (head / prototype only), e.g.
        from a per-domain cache; computed here when absent.
    validation: (texts, labels) for early stopping (used when `training.early_stop_patience`
        is set); validation_features as `features`, for head.
    k, seed: fit on a k-per-class subset drawn from (texts, labels) with `draw_kshot`.
    checkpoint_name: sub-folder of `training.checkpoint_dir` for this fit's checkpoints.
    """
    texts, labels = _check_texts(texts, labels)
    if config.casing:
        raise ValueError("casing applies to NER taggers only (fit_tagger), not to text classifiers")
    if config.token_contrastive is not None:
        raise ValueError("token_contrastive (CONTaiNER's token objective) applies to NER taggers only (fit_tagger), "
                         "not to text classifiers")
    if features is not None and len(features) != len(texts):
        raise ValueError(f"features has {len(features)} rows for {len(texts)} texts")
    if features is not None and not config.frozen_encoder:
        raise ValueError(f"features are only used by frozen-encoder strategies, not '{config.strategy}'")
    if k is not None:
        chosen = kshot_support(labels, k, seed)
        texts, labels = [texts[i] for i in chosen], [labels[i] for i in chosen]
        features = None if features is None else np.asarray(features)[chosen]
    contrastive = None
    if config.contrastive is not None:
        skipped = config.contrastive.skip_reason(len(texts), len(set(labels)))
        if skipped is not None:
            contrastive = {"skipped": skipped}
        else:  # a tuned encoder: features of the given one no longer apply
            backbone, contrastive = contrastive_tune(backbone, texts, labels, config.contrastive, config.pooling,
                                                     config.device, progress)
            features = validation_features = None
    classes = sorted(set(labels))
    named = label_name_support(classes) if config.label_names else []
    index = {label: i for i, label in enumerate(classes)}
    common = {"strategy": config.strategy, "pooling": config.pooling, "normalize": config.normalize_features,
              "max_length": config.max_length, "batch_size": config.batch_size, "device": config.device}

    def encode(items: Sequence[str]) -> torch.Tensor:
        raw = embed_texts(backbone, list(items), batch_size=config.batch_size,
                          max_length=token_limit(backbone, config.max_length),
                          pooling=config.pooling, normalize=False, device=config.device, progress=progress)
        return _prepare(raw, config)

    if named:  # class names as extra support texts (their features are computed here)
        if features is not None:
            features = np.vstack([np.asarray(features, dtype=np.float32),
                                  embed_texts(backbone, [t for t, _ in named], batch_size=config.batch_size,
                                              max_length=token_limit(backbone, config.max_length),
                                              pooling=config.pooling, normalize=False, device=config.device)])
        texts, labels = texts + [t for t, _ in named], labels + [label for _, label in named]
    targets = torch.tensor([index[label] for label in labels], dtype=torch.long)

    if config.frozen_encoder:
        x = _prepare(features, config) if features is not None else encode(texts)

        def validation_set() -> tuple[torch.Tensor, torch.Tensor] | None:
            val_texts, val_labels = _known(validation, index)
            if not val_texts:
                return None
            val_x = (_prepare(np.asarray(validation_features)[_known_positions(validation, index)], config)
                     if validation_features is not None else encode(val_texts))
            return val_x, torch.tensor([index[label] for label in val_labels], dtype=torch.long)

        head, summary = _fit_feature_head(x, targets, len(classes), config,
                                          validation_set if validation is not None else None, 4096, checkpoint_name, f"head ({len(classes)} classes)", progress)
        if contrastive is not None:
            summary = {**(summary or {}), "contrastive": contrastive}
        return EncoderClassifier(backbone, head, classes, training=summary, **common)

    tokenizer = backbone.tokenizer
    encoder = _trainable_encoder(backbone, config)
    torch.manual_seed(config.training.seed)
    module = PooledClassifierModule(encoder, LinearHead(backbone.hidden_size, len(classes), config.dropout),
                                    config.pooling, config.normalize_features)
    if config.head_init == "prototype":  # the support features of the starting encoder
        start = Backbone(name=backbone.name, model=encoder, tokenizer=tokenizer)
        raw = embed_texts(start, texts, batch_size=config.batch_size, max_length=token_limit(backbone, config.max_length),
                          pooling=config.pooling, normalize=False, device=config.device)
        encoder.train()
        initialise_from_prototypes(module.head, _prepare(raw, config), targets, config)
    max_length = token_limit(backbone, config.max_length)
    token_ids = tokenize(tokenizer, texts, max_length)
    batches = SequenceBatches(token_ids, targets.tolist(), config.training.batch_size, config.training.seed,
                              tokenizer.pad_token_id, per_token=False)
    validate = None
    if validation is not None and config.training.early_stop_patience:
        val_texts, val_labels = _known(validation, index)
        if val_texts:
            val_ids = tokenize(tokenizer, val_texts, max_length)
            order = length_bucketed_batches([len(i) for i in val_ids], config.batch_size)
            val_batches = [collate([val_ids[i] for i in b], [index[val_labels[i]] for i in b],
                                   tokenizer.pad_token_id, per_token=False) for b in order]
            validate = lambda model: _mean_loss(model, val_batches, _sequence_loss)
    summary = _train(module, _sequence_loss, batches, config, checkpoint_name, validate,
                     f"{config.strategy} fine-tuning ({len(classes)} classes)", progress)
    tuned = _merged_backbone(backbone, module.encoder, config)
    return EncoderClassifier(tuned, module.head, classes, training=summary, **common)


def _fit_feature_head(x: torch.Tensor, y: torch.Tensor, n_classes: int, config: AdaptationConfig,
                      validation_set, chunk: int, checkpoint_name: str | None, description: str, progress: bool
                      ) -> tuple[nn.Module, dict[str, Any] | None]:
    """The head on a frozen encoder's features (x, y): prototypes (nothing trained, no summary) or a
    linear head trained on them. `validation_set()` gives (x, y) for early stopping, or None; it
    is called only when `training.early_stop_patience` can use it."""
    if config.strategy is AdaptStrategy.PROTOTYPE:
        return PrototypeHead.from_features(x, y, n_classes, config.metric, config.temperature), None
    torch.manual_seed(config.training.seed)
    head = LinearHead(x.shape[1], n_classes, config.dropout)
    if config.head_init == "prototype":
        initialise_from_prototypes(head, x, y, config)
    validate = None
    held_out = validation_set() if validation_set is not None and config.training.early_stop_patience else None
    if held_out is not None:
        val_x, val_y = held_out
        val_batches = [{"features": val_x[i:i + chunk], "labels": val_y[i:i + chunk]}
                       for i in range(0, len(val_y), chunk)]
        validate = lambda model: _mean_loss(model, val_batches, _feature_loss)
    batches = FeatureBatches(x, y, config.training.batch_size, config.training.seed)
    summary = _train(head, _feature_loss, batches, config, checkpoint_name, validate, description, progress)
    return head.cpu(), summary


def initialise_from_prototypes(head: LinearHead, features: torch.Tensor, targets: torch.Tensor,
                               config: AdaptationConfig) -> None:
    """Set a linear head to the prototype classifier of (features, targets) under `config.metric`.

    Cosine (features already normalised): weights `temperature * p / ||p||`, bias 0, which is
    `PrototypeHead`'s `temperature * cos`. Euclidean: `-||x - p||^2 = 2 x.p - ||p||^2 - ||x||^2`,
    and the last term is the same for every class, so weights `2p` and bias `-||p||^2` give the
    same probabilities as the prototype rule.
    """
    n_classes = head.linear.out_features
    prototypes = PrototypeHead.from_features(features, targets, n_classes, config.metric,
                                             config.temperature).prototypes
    with torch.no_grad():
        if config.metric == "cosine":
            head.linear.weight.copy_(config.temperature * nn.functional.normalize(prototypes, dim=-1))
            head.linear.bias.zero_()
        else:
            head.linear.weight.copy_(2.0 * prototypes)
            head.linear.bias.copy_(-prototypes.pow(2).sum(dim=-1))


def label_name_support(classes: Sequence[str]) -> list[tuple[str, str]]:
    """(class name as words, class) for every class whose label is words (see `label_text`)."""
    from fastadapt.tasks.meta_episodes import label_text

    named = [(label_text(label), label) for label in classes]
    return [(text, label) for text, label in named if text]


def _prepare(features: np.ndarray | torch.Tensor, config: AdaptationConfig) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    return nn.functional.normalize(x, dim=-1) if config.normalize_features else x


def _known_positions(validation, index) -> list[int]:
    return [i for i, label in enumerate(validation[1]) if str(label) in index]


def _known(validation, index) -> tuple[list[str], list[str]]:
    """Validation rows whose class the model knows (others cannot be scored by its loss)."""
    texts, labels = list(validation[0]), [str(label) for label in validation[1]]
    keep = _known_positions((texts, labels), index)
    return [texts[i] for i in keep], [labels[i] for i in keep]


# ---- NER ------------------------------------------------------------------------------------------


def _check_tagging(token_lists, tag_lists) -> tuple[list[list[str]], list[list[str]]]:
    token_lists = [list(tokens) for tokens in token_lists]
    tag_lists = [[str(tag) for tag in tags] for tags in tag_lists]
    if len(token_lists) != len(tag_lists):
        raise ValueError(f"token_lists and tag_lists must have the same length; got {len(token_lists)} and "
                         f"{len(tag_lists)}")
    if not token_lists:
        raise ValueError("token_lists is empty; a tagger needs at least one sentence")
    for i, (tokens, tags) in enumerate(zip(token_lists, tag_lists)):
        if len(tokens) != len(tags):
            raise ValueError(f"token_lists[{i}] has {len(tokens)} tokens but tag_lists[{i}] has {len(tags)} tags")
        for token in tokens:
            if not isinstance(token, str):
                raise ValueError(f"token_lists[{i}] must hold strings; got {type(token).__name__} {token!r}")
    return token_lists, tag_lists


def _tagging_support(token_lists, tag_lists, features, k: int | None, seed: int):
    """(tokens, tags, features) of the k-mention support set when `k` is given, the tag set and its index."""
    if k is not None:
        chosen = ner_kshot_support(tag_lists, k, seed)
        token_lists, tag_lists = [token_lists[i] for i in chosen], [tag_lists[i] for i in chosen]
        if features is not None:
            features = ([features[0][i] for i in chosen], [features[1][i] for i in chosen])
    tags = tag_set(tag_lists)
    if len(tags) < 2:
        raise ValueError("tag_lists hold no entity at all (only 'O'); a tagger needs at least one entity type")
    index = {tag: i for i, tag in enumerate(tags)}
    return token_lists, tag_lists, features, tags, index


def fit_tagger(
    backbone: Backbone,
    token_lists: Sequence[Sequence[str]],
    tag_lists: Sequence[Sequence[str]],
    config: AdaptationConfig,
    *,
    features: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
    validation: tuple[Sequence[Sequence[str]], Sequence[Sequence[str]]] | None = None,
    k: int | None = None,
    seed: int = 0,
    checkpoint_name: str | None = None,
    progress: bool = False,
) -> EncoderTagger:
    """An `EncoderTagger` fitted with `config.strategy` on IOB2-tagged sentences.

    Labels go on each word's first subword (-100 elsewhere). head and prototype read the frozen
    encoder's first-subword states once; full and lora fine-tune on subword sequences.
    features: (per-sentence first-subword states, per-sentence masks of words that have one), as
        `EncoderTagger.word_features` returns them (head / prototype only), e.g. computed once
        for many k-shot fits.
    validation: (token_lists, tag_lists) for early stopping (with `training.early_stop_patience`).
    k, seed: fit on a greedy k-mentions-per-type support set (`draw_ner_kshot`).
    """
    token_lists, tag_lists = _check_tagging(token_lists, tag_lists)
    if config.contrastive is not None:
        raise ValueError("contrastive (SetFit's pair step) applies to text classifiers only (fit_classifier), "
                         "not to NER taggers")
    if features is not None:
        if not config.frozen_encoder:
            raise ValueError(f"features are only used by frozen-encoder strategies, not '{config.strategy}'")
        if len(features) != 2 or len(features[0]) != len(token_lists) or len(features[1]) != len(token_lists):
            raise ValueError("features must be (states, masks), one entry per sentence of token_lists")
    token_lists, tag_lists, features, tags, index = _tagging_support(token_lists, tag_lists, features, k, seed)
    if config.casing and config.strategy is AdaptStrategy.PROTOTYPE:
        raise ValueError("casing applies to trained heads (head, full, lora), not to prototypes")
    common = {"strategy": config.strategy, "normalize": config.normalize_features, "max_length": config.max_length,
              "batch_size": config.batch_size, "device": config.device, "casing": config.casing}

    def flat_features(sentences, sentence_tags, given=None):
        states, present = given if given is not None else word_features(
            backbone, sentences, config.max_length, config.batch_size, config.device, progress)
        x = _prepare(np.concatenate([f[p] for f, p in zip(states, present)]), config)
        if config.casing:
            shapes = np.concatenate([c[p] for c, p in zip(casing_features(sentences), present)])
            x = torch.cat([x, torch.from_numpy(shapes)], dim=1)
        y = np.concatenate([np.asarray([index.get(t, 0) for t in tags_], dtype=np.int64)[p]
                            for tags_, p in zip(sentence_tags, present)])
        return x, torch.from_numpy(y)

    if config.frozen_encoder:
        x, y = flat_features(token_lists, tag_lists, features)
        validation_set = (lambda: flat_features(*_check_tagging(*validation))) if validation is not None else None
        head, summary = _fit_feature_head(x, y, len(tags), config, validation_set, 8192, checkpoint_name, f"token head ({len(tags)} tags)", progress)
        return EncoderTagger(backbone, head, tags, training=summary, **common)

    tokenizer = backbone.tokenizer

    def encoded(sentences, sentence_tags):
        ids, firsts = encode_words(tokenizer, sentences, token_limit(backbone, config.max_length))
        keep = [i for i, sentence in enumerate(sentences) if sentence]
        labels = [subword_labels(firsts[i], len(ids[i]), [index.get(t, 0) for t in sentence_tags[i]]) for i in keep]
        shapes = None
        if config.casing:
            word_casing = casing_features([sentences[i] for i in keep])
            shapes = [subword_casing(firsts[i], len(ids[i]), c) for i, c in zip(keep, word_casing)]
        return [ids[i] for i in keep], labels, shapes

    encoder = _trainable_encoder(backbone, config)
    torch.manual_seed(config.training.seed)
    extra = len(CASING_CLASSES) if config.casing else 0
    module = TokenClassifierModule(encoder, LinearHead(backbone.hidden_size + extra, len(tags), config.dropout),
                                   config.normalize_features, casing=config.casing)
    if config.head_init == "prototype":  # token prototypes of the starting encoder's support features
        start = Backbone(name=backbone.name, model=encoder, tokenizer=tokenizer)
        x, y = flat_features(token_lists, tag_lists, word_features(
            start, token_lists, config.max_length, config.batch_size, config.device, progress))
        encoder.train()
        initialise_from_prototypes(module.head, x, y, config)
    ids, labels, shapes = encoded(token_lists, tag_lists)
    batches = SequenceBatches(ids, labels, config.training.batch_size, config.training.seed,
                              tokenizer.pad_token_id, per_token=True, casing=shapes)
    validate = None
    if validation is not None and config.training.early_stop_patience:
        val_ids, val_labels, val_shapes = encoded(*_check_tagging(*validation))
        order = length_bucketed_batches([len(i) for i in val_ids], config.batch_size)
        val_batches = [collate([val_ids[i] for i in b], [val_labels[i] for i in b], tokenizer.pad_token_id,
                               per_token=True, casing=None if val_shapes is None else [val_shapes[i] for i in b])
                       for b in order]
        validate = lambda model: _mean_loss(model, val_batches, _sequence_loss)
    trained, loss, objective = module, _sequence_loss, "token fine-tuning"
    if config.token_contrastive is not None:
        trained = ContrastiveTaggerModule(module, config.token_contrastive, backbone.hidden_size)
        loss, objective = contrastive_tagger_loss, "token fine-tuning + CONTaiNER objective"
        if validate is not None:
            validate = lambda model: _mean_loss(unwrap_model(model).tagger, val_batches, _sequence_loss)
    summary = _train(trained, loss, batches, config, checkpoint_name, validate,
                     f"{config.strategy} {objective} ({len(tags)} tags)", progress)
    if config.token_contrastive is not None:
        summary = {**summary, "token_contrastive": dataclasses.asdict(config.token_contrastive)}
    tuned = _merged_backbone(backbone, module.encoder, config)
    return EncoderTagger(tuned, module.head, tags, training=summary, **common)


def fit_nnshot(
    backbone: Backbone,
    token_lists: Sequence[Sequence[str]],
    tag_lists: Sequence[Sequence[str]],
    *,
    structured: bool = False,
    transitions: Any = None,
    transition_weight: float = 0.25,
    temperature: float = 50.0,
    max_length: int = 256,
    batch_size: int = 64,
    device: str = "auto",
    features: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
    k: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> EncoderTagger:
    """NNShot (structured=False) or StructShot (True) on the frozen encoder: every support word
    with a subword is a neighbour (`fastadapt.adaptation.nnshot`). Nothing is trained.

    transitions: the source domain's `AbstractTransitions` for StructShot (a pre-trained source
        tagger carries them); None estimates them from the support sentences themselves.
    temperature, transition_weight: only their ratio moves StructShot's path; the defaults are
        the best mean held-out F1 on CoNLL testa over the four tag-set-extension folds
        (benchmarks/ner_few_shot.py; a ratio of 10 cut entity recall to almost nothing there).
    features / k / seed: as `fit_tagger`.
    """
    from fastadapt.adaptation.nnshot import AbstractTransitions, NearestNeighbourHead

    token_lists, tag_lists = _check_tagging(token_lists, tag_lists)
    token_lists, tag_lists, features, tags, index = _tagging_support(token_lists, tag_lists, features, k, seed)
    states, present = features if features is not None else word_features(
        backbone, token_lists, max_length, batch_size, device, progress)
    x = nn.functional.normalize(torch.as_tensor(np.concatenate([f[p] for f, p in zip(states, present)])), dim=-1)
    y = torch.from_numpy(np.concatenate([np.asarray([index[t] for t in tags_], dtype=np.int64)[p]
                                         for tags_, p in zip(tag_lists, present)]))
    head = NearestNeighbourHead(x, y, len(tags), temperature)
    if structured and transitions is None:
        transitions = AbstractTransitions.from_tag_sequences(tag_lists)
    return EncoderTagger(backbone, head, tags, strategy=AdaptStrategy.STRUCTSHOT if structured else AdaptStrategy.NNSHOT, normalize=True,
                         max_length=max_length, batch_size=batch_size, device=device,
                         transitions=transitions if structured else None, transition_weight=transition_weight,
                         training={"support_tokens": len(y)})
