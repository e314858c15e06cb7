"""Adaptation nodes: encode a domain once, fit each strategy on the full train split and on every
k-shot set, and write predictions in the evaluation contract.

Frozen-encoder strategies (head, prototype) on text domains read the domain's cached features
(`<domain>.embeddings.<backbone>`): one pass of the encoder serves the full-data fit, every k-shot
fit and the test predictions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from fastadapt.adaptation import (
    AdaptationPlan,
    EncoderClassifier,
    EncoderTagger,
    fit_classifier,
    fit_tagger,
)
from fastadapt.adaptation.cache import (
    EMBEDDING_COLUMN,
    cached_features,
    classification_table,
)
from fastadapt.adaptation.classifier import token_limit
from fastadapt.adaptation.ner import word_features
from fastadapt.adaptation.strategies import AdaptStrategy, DomainPlan
from fastadapt.config import domain_configs
from fastadapt.models.backbones import named_backbone
from fastadapt.models.encoder import embed_texts
from fastadapt.models.predictor import ner_predictions, set_predictions, with_set

log = logging.getLogger(__name__)


def plans_for(adaptation_params: Mapping[str, Any], domains_params: Mapping[str, Any], domain: str
              ) -> tuple[AdaptationPlan, DomainPlan]:
    """The validated plan and this domain's part of it (and torch's thread count, if set)."""
    plan = AdaptationPlan.from_params(adaptation_params)
    if plan.num_threads:
        torch.set_num_threads(plan.num_threads)
    return plan, plan.for_domains(domain_configs({"domains": domains_params}))[domain]


def _split(splits: pd.DataFrame, name: str) -> pd.DataFrame:
    return splits[splits["split"] == name].sort_values("row_id")


def _log_fit(domain: str, model_name: str, what: str, started: float, model: Any) -> None:
    training = getattr(model, "training", {}) or {}
    log.info("%s: %s fitted on %s in %.1f s%s", domain, model_name, what, time.perf_counter() - started,
             f" ({training['steps']} steps, stop: {training['stop_reason']})" if training else "")


# ---- nodes ---------------------------------------------------------------------------------------


def embed_domain(
    splits: pd.DataFrame, adaptation_params: Mapping[str, Any], domains_params: Mapping[str, Any], domain: str,
    wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None,
) -> pd.DataFrame:
    """Pooled, un-normalised frozen-encoder features of every row: columns row_id, embedding."""
    plan, domain_plan = plans_for(adaptation_params, domains_params, domain)
    config = next(c for c in (*domain_plan.configs.values(), *domain_plan.kshot_configs.values()) if c.frozen_encoder)
    backbone = named_backbone(plan.backbone, "adaptation.backbone", wordpiece_tokenizer, pretrained_backbone)
    rows = splits.sort_values("row_id")
    started = time.perf_counter()
    vectors = embed_texts(backbone, rows["text"].tolist(), batch_size=config.batch_size,
                          max_length=token_limit(backbone, config.max_length),
                          pooling=config.pooling, normalize=False, device=config.device, progress=True)
    log.info("%s: %d texts embedded with %s in %.1f s", domain, len(rows), plan.backbone,
             time.perf_counter() - started)
    return pd.DataFrame({"row_id": rows["row_id"].to_numpy(), EMBEDDING_COLUMN: list(vectors)})


def fit_full_data(
    splits: pd.DataFrame, adaptation_params: Mapping[str, Any], domains_params: Mapping[str, Any],
    domain: str, strategy: AdaptStrategy, embeddings: pd.DataFrame | None = None,
    wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None,
) -> EncoderClassifier | EncoderTagger:
    """One strategy fitted on the whole train split (validation split for early stopping)."""
    plan, domain_plan = plans_for(adaptation_params, domains_params, domain)
    config = domain_plan.configs[strategy]
    backbone = named_backbone(plan.backbone, "adaptation.backbone", wordpiece_tokenizer, pretrained_backbone)
    train, validation = _split(splits, "train"), _split(splits, "validation")
    name = plan.model_name(strategy)
    started = time.perf_counter()
    if domain_plan.kind == "ner":
        model = fit_tagger(backbone, train["tokens"].tolist(), train["tags"].tolist(), config,
                           validation=(validation["tokens"].tolist(), validation["tags"].tolist())
                           if len(validation) else None,
                           checkpoint_name=f"{domain}/{name}/full_data", progress=True)
    else:
        use_cache = embeddings is not None and config.frozen_encoder
        model = fit_classifier(
            backbone, train["text"].tolist(), train["label"].tolist(), config,
            features=cached_features(embeddings, train["row_id"]) if use_cache else None,
            validation=(validation["text"].tolist(), validation["label"].tolist()) if len(validation) else None,
            validation_features=cached_features(embeddings, validation["row_id"]) if use_cache and len(validation) else None,
            checkpoint_name=f"{domain}/{name}/full_data", progress=True,
        )
    _log_fit(domain, name, f"{len(train)} train rows", started, model)
    return model


def predict_test(model: Any, splits: pd.DataFrame, embeddings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Test-split predictions in the evaluation contract (cached features when the model can)."""
    test = _split(splits, "test")
    if isinstance(model, EncoderTagger):
        return ner_predictions(model, test)
    return classification_table(model, test, cached_features(embeddings, test["row_id"]))


def kshot_fit_predict(
    splits: pd.DataFrame, kshot_sets: pd.DataFrame, adaptation_params: Mapping[str, Any],
    domains_params: Mapping[str, Any], domain: str, strategy: AdaptStrategy, embeddings: pd.DataFrame | None = None,
    wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None,
) -> pd.DataFrame:
    """One model per (k, seed) support set, each scored on the whole test split: columns k, seed,
    then the prediction contract."""
    plan, domain_plan = plans_for(adaptation_params, domains_params, domain)
    config = domain_plan.kshot_configs[strategy]
    train, test = _split(splits, "train"), _split(splits, "test")
    rows_by_id = train.set_index("row_id", drop=False)
    name = plan.model_name(strategy)
    sets = domain_plan.kshot_sets_to_fit(train, kshot_sets)  # before any slow work
    backbone = named_backbone(plan.backbone, "adaptation.backbone", wordpiece_tokenizer, pretrained_backbone)
    frames = []
    if domain_plan.kind == "ner":
        # Frozen strategies: the encoder's word features of the train and test sentences, once.
        cached = None
        if config.frozen_encoder:
            train_features = dict(zip(train["row_id"], zip(*word_features(
                backbone, train["tokens"].tolist(), config.max_length, config.batch_size, config.device, True))))
            test_features = word_features(backbone, test["tokens"].tolist(), config.max_length, config.batch_size,
                                          config.device, True)
            cached = train_features
        for k, seed, ids in tqdm(sets, desc=f"{domain} k-shot {name}", unit="set"):
            support = rows_by_id.loc[ids]
            started = time.perf_counter()
            features = None if cached is None else tuple(map(list, zip(*[cached[i] for i in ids])))
            model = fit_tagger(backbone, support["tokens"].tolist(), support["tags"].tolist(), config,
                               features=features, checkpoint_name=f"{domain}/{name}/k{k}-seed{seed}")
            _log_fit(domain, name, f"{k}-shot seed {seed} ({len(ids)} sentences)", started, model)
            if cached is None:
                table = ner_predictions(model, test)
            else:
                predicted = model.predict_features(*test_features)
                table = pd.DataFrame({"row_id": test["row_id"].to_numpy(),
                                      "tags": [list(t) for t in test["tags"]], "predicted": predicted})
            frames.append(with_set(table, k, seed))
        return pd.concat(frames, ignore_index=True)

    use_cache = embeddings is not None and config.frozen_encoder
    test_features = cached_features(embeddings, test["row_id"]) if use_cache else None
    for k, seed, ids in tqdm(sets, desc=f"{domain} k-shot {name}", unit="set"):
        support = rows_by_id.loc[ids]
        started = time.perf_counter()
        model = fit_classifier(backbone, support["text"].tolist(), support["label"].tolist(), config,
                               features=cached_features(embeddings, ids) if use_cache else None,
                               checkpoint_name=f"{domain}/{name}/k{k}-seed{seed}")
        _log_fit(domain, name, f"{k}-shot seed {seed} ({len(ids)} rows)", started, model)
        frames.append(with_set(classification_table(model, test, test_features), k, seed))
    return set_predictions(frames)


def unseen_kshot_fit_predict(
    splits: pd.DataFrame, unseen_kshot_sets: pd.DataFrame, adaptation_params: Mapping[str, Any],
    domains_params: Mapping[str, Any], domain: str, strategy: AdaptStrategy, embeddings: pd.DataFrame | None = None,
    wordpiece_tokenizer: Any = None, pretrained_backbone: Any = None,
) -> pd.DataFrame:
    """Each unseen-class support set fitted, scored on the rest of those classes (its query)."""
    plan, domain_plan = plans_for(adaptation_params, domains_params, domain)
    config = domain_plan.kshot_configs[strategy]
    backbone = named_backbone(plan.backbone, "adaptation.backbone", wordpiece_tokenizer, pretrained_backbone)
    rows_by_id = splits.set_index("row_id", drop=False)
    use_cache = embeddings is not None and config.frozen_encoder
    name = plan.model_name(strategy)
    frames = []
    groups = list(unseen_kshot_sets.groupby(["k", "seed"], sort=True))
    for (k, seed), episode in tqdm(groups, desc=f"{domain} unseen-class k-shot {name}", unit="set"):
        support_ids = episode.loc[episode["role"] == "support", "row_id"].tolist()
        query = rows_by_id.loc[episode.loc[episode["role"] == "query", "row_id"]].reset_index(drop=True)
        support = rows_by_id.loc[support_ids]
        model = fit_classifier(backbone, support["text"].tolist(), support["label"].tolist(), config,
                               features=cached_features(embeddings, support_ids) if use_cache else None,
                               checkpoint_name=f"{domain}/{name}/unseen-k{k}-seed{seed}")
        table = classification_table(model, query, cached_features(embeddings, query["row_id"]) if use_cache else None)
        frames.append(with_set(table, int(k), int(seed)))
    return pd.concat(frames, ignore_index=True)


__all__ = ["embed_domain", "fit_full_data", "kshot_fit_predict", "predict_test", "unseen_kshot_fit_predict"]
