"""Feature nodes: splits, k-shot sets, class-split episodes and the unlabelled text pool."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import pandas as pd

from fastadapt.config import DomainConfig
from fastadapt.tasks.episodes import (
    EpisodeSettings,
    class_split_episodes,
    parse_class_list,
)
from fastadapt.tasks.kshot import (
    KShotSettings,
    kshot_sets,
    ner_kshot_sets,
    unseen_class_kshot_sets,
)
from fastadapt.tasks.pool import PoolSettings, WordPieceSettings, unlabelled_pool
from fastadapt.tasks.splits import SplitSpec, assign_splits

log = logging.getLogger(__name__)


def split_domain(rows: pd.DataFrame, domain_params: Mapping[str, Any], seed: int, domain: str,
                 block: str = "domains") -> pd.DataFrame:
    """Train / validation / test as PROTOCOL.md section 1 defines them for this domain (or, with
    `block="meta_sources"`, this meta-training source)."""
    config = DomainConfig.from_params(domain, domain_params, block=block)
    spec = SplitSpec.from_params({"seed": seed, **config.split}, where=f"{block}.{domain}.split")
    label_column = "label" if config.kind == "text_classification" else None
    splits = assign_splits(rows, spec, label_column=label_column) if label_column else assign_splits(
        rows, spec
    )
    log.info("%s splits: %s", domain, splits["split"].value_counts().to_dict())
    return splits


def draw_kshot_sets(
    splits: pd.DataFrame, kshot_params: Mapping[str, Any], domain_params: Mapping[str, Any], domain: str
) -> pd.DataFrame:
    """k-shot training sets from the train split (PROTOCOL.md sections 2 and 4)."""
    config = DomainConfig.from_params(domain, domain_params)
    settings = KShotSettings.from_params(kshot_params, where="kshot")
    train = splits[splits["split"] == "train"]
    if config.kind == "ner":
        return ner_kshot_sets(train, settings.ner_ks, settings.seeds)
    return kshot_sets(train, settings.ks, settings.seeds)


def draw_class_split_episodes(
    rows: pd.DataFrame, class_split_files: Mapping[str, bytes], episode_params: Mapping[str, Any]
) -> pd.DataFrame:
    """Meta-test episodes on each class split's test classes (PROTOCOL.md section 3)."""
    settings = EpisodeSettings.from_params(episode_params, where="episodes")
    split_names = sorted({name.split("/")[0] for name in class_split_files if name.endswith("/test.txt")})
    if not split_names:
        raise ValueError(
            "episodes.class_splits: no <split>/test.txt files found in the class-split folder"
        )
    frames = []
    for split_name in split_names:
        classes = parse_class_list(class_split_files[f"{split_name}/test.txt"].decode("utf-8"))
        unknown = sorted(set(classes) - set(rows["label"]))
        if unknown:
            raise ValueError(f"class split {split_name}/test.txt names classes not in the data: {unknown[:5]}")
        for setting, n_way, k_shot in settings.draws:
            frames.append(
                class_split_episodes(
                    rows,
                    classes,
                    split_index=int(split_name),
                    n_way=n_way,
                    k_shot=k_shot,
                    n_query=settings.n_query,
                    n_episodes=settings.n_episodes,
                    setting=setting,
                )
            )
    return pd.concat(frames, ignore_index=True)


def build_unlabelled_pool(
    news_stream: pd.DataFrame,
    pool_params: Mapping[str, Any],
    dialogue_turns: pd.DataFrame | None = None,
    **domain_splits: pd.DataFrame,
) -> pd.DataFrame:
    """Unlabelled texts for self-supervised pretraining; test splits are never included."""
    settings = PoolSettings.from_params(pool_params, where="unlabelled_pool")
    keep = set(settings.domain_splits)
    sources: dict[str, list[str]] = {}
    if settings.stream:
        for source, frame in news_stream.groupby("source", sort=True):
            sources[f"stream:{source}"] = frame["headline"].tolist()
    if dialogue_turns is not None:
        utterances = dialogue_turns[dialogue_turns["split"].isin(keep)]
        sources["dialogue_logs"] = utterances["text"].tolist()
    for domain, splits in sorted(domain_splits.items()):
        chosen = splits[splits["split"].isin(keep)]
        texts = chosen["text"] if "text" in chosen else chosen["tokens"].map(" ".join)
        sources[domain] = texts.tolist()
    pool = unlabelled_pool(sources)
    log.info("unlabelled pool: %d texts from %s", len(pool), pool["source"].value_counts().to_dict())
    return pool


def train_pool_tokenizer(pool: pd.DataFrame, tokenizer_params: Mapping[str, Any]) -> Any:
    """tiny-bert's WordPiece vocabulary, learnt from our own unlabelled pool."""
    from fastadapt.models.backbones import SavedTokenizer, train_wordpiece_tokenizer

    settings = WordPieceSettings.from_params(tokenizer_params, where="wordpiece_tokenizer")
    tokenizer = train_wordpiece_tokenizer(
        pool["text"].tolist(), vocab_size=settings.vocab_size, lowercase=settings.lowercase,
        min_frequency=settings.min_frequency,
    )
    log.info("WordPiece tokeniser: %d tokens from %d texts", len(tokenizer), len(pool))
    return SavedTokenizer(tokenizer)


def draw_unseen_kshot_sets(
    splits: pd.DataFrame, kshot_params: Mapping[str, Any], domain_params: Mapping[str, Any], domain: str
) -> pd.DataFrame:
    """k-shot sets on test classes never seen in training (PROTOCOL.md section 5)."""
    config = DomainConfig.from_params(domain, domain_params)
    seeds = KShotSettings.from_params(kshot_params, where="kshot").seeds
    return unseen_class_kshot_sets(
        splits, config.unseen_classes["ks"], seeds, config.unseen_classes["group_column"]
    )
