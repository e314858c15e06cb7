"""Supervised transfer for few-shot NER: a tagger pre-trained on source entity types, the
starting encoder of a new task (Huang et al. 2021, "Few-shot named entity recognition: an
empirical baseline study": supervised pre-training on the source types, then NNShot /
StructShot or fine-tuning on the target's few shots, beats meta-learning alone).

    from fastadapt.adaptation.transfer import pretrain_tagger
    tagger = pretrain_tagger(backbone, tokens, tags, config, held_out=["PER"])   # PER never seen
    tagger.save_directory("data/06_models/ner_source_tagger")
    adapt(tagger, support, "structshot")         # its encoder, its source transitions

Tag-set extension (PROTOCOL.md section 4) holds a type out: its mentions are relabelled `O` in
everything the source tagger trains on, and `pretrain_tagger` checks that no tag of it is left,
so a fold's encoder can never have seen the type it is tested on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastadapt.adaptation.ner import EncoderTagger
from fastadapt.adaptation.nnshot import AbstractTransitions
from fastadapt.adaptation.strategies import AdaptationConfig
from fastadapt.config import Checks, ConfigError, Settings
from fastadapt.models.backbones import Backbone


class HeldOutLeakError(ValueError):
    """Training material of a source tagger still tags an entity type that is held out."""


def hold_out_types(tag_lists: Sequence[Sequence[str]], held_out: Iterable[str]) -> list[list[str]]:
    """Copies of `tag_lists` with every B-/I- tag of a held-out type replaced by `O`."""
    held = set(held_out)
    return [["O" if tag != "O" and tag[2:] in held else str(tag) for tag in tags] for tags in tag_lists]


def check_no_leak(tag_lists: Sequence[Sequence[str]], held_out: Iterable[str], where: str = "tag_lists") -> None:
    """Raise `HeldOutLeakError` naming the sentence when a held-out type is tagged anywhere."""
    held = set(held_out)
    for i, tags in enumerate(tag_lists):
        leaked = sorted({tag[2:] for tag in tags if tag != "O" and tag[2:] in held})
        if leaked:
            raise HeldOutLeakError(f"{where}[{i}] tags held-out type(s) {leaked}; relabel them O "
                                   f"(hold_out_types) before training")


def renamed_types(tag_lists: Sequence[Sequence[str]], type_names: Mapping[str, str]) -> list[list[str]]:
    """Copies of `tag_lists` with each entity type `t` of `type_names` renamed `type_names[t]`, so
    that corpora which name one type two ways (CoNLL's PER, CrossNER's person) train one class."""
    return [[f"{tag[:2]}{type_names.get(tag[2:], tag[2:])}" if tag != "O" else "O" for tag in tags]
            for tags in tag_lists]


def source_sentences(tables: Mapping[str, Any], type_names: Mapping[str, str] | None = None,
                     repeat: Mapping[str, int] | None = None) -> tuple[list[list[str]], list[list[str]], str]:
    """The train sentences (non-empty) of several NER `tables` (name -> splits table with columns
    split, tokens, tags) as one source: each table's types renamed by `type_names`, its sentences
    `repeat[name]` times (1 by default; a small corpus among a large one), and a description."""
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    described = []
    for name, table in tables.items():
        train = table[(table["split"] == "train") & (table["tokens"].map(len) > 0)]
        times = int((repeat or {}).get(name, 1))
        tokens += [list(t) for t in train["tokens"]] * times
        tags += renamed_types([list(t) for t in train["tags"]], type_names or {}) * times
        described.append(f"{name} train" + (f" x{times}" if times > 1 else ""))
    return tokens, tags, " + ".join(described)


def pretrain_tagger(
    backbone: Backbone,
    token_lists: Sequence[Sequence[str]],
    tag_lists: Sequence[Sequence[str]],
    config: AdaptationConfig,
    *,
    held_out: Iterable[str] = (),
    source: str = "",
    **fit_options: Any,
) -> EncoderTagger:
    """A source tagger fine-tuned (`config`, usually strategy full) on the source sentences with
    the `held_out` types relabelled O. It keeps the abstract IOB2 transitions of its training
    tags (StructShot's source-domain estimate) and, in `training`, the held-out types and the
    source's name."""
    from fastadapt.adaptation.fit import fit_tagger

    held = sorted(set(held_out))
    relabelled = hold_out_types(tag_lists, held)
    check_no_leak(relabelled, held, "source tag_lists")
    tagger = fit_tagger(backbone, token_lists, relabelled, config, **fit_options)
    tagger.transitions = AbstractTransitions.from_tag_sequences(relabelled)
    tagger.training = {**tagger.training, "held_out": held, "source": source,
                       "source_sentences": len(relabelled), "lr": config.training.lr,
                       "batch_size": config.training.batch_size}
    return tagger


@dataclass(frozen=True)
class SourceTaggerSettings(Settings):
    """The `meta_training.ner_source` block: which NER domain's train split the released source
    tagger learns, which other NER corpora (`meta_sources` of kind ner; null: all) join it and how
    often each of their sentences repeats, how the domain's types are renamed to agree with theirs,
    which types it never sees (after the renaming), and how it is fine-tuned (an
    `AdaptationConfig`, strategy finetune_all or finetune_lora)."""

    domain: str | None = None
    adaptation: AdaptationConfig | Mapping[str, Any] | None = None
    held_out: tuple[str, ...] = ()
    sources: tuple[str, ...] | None = None  # None: every NER corpus of `meta_sources:`
    source_repeat: int = 1
    type_names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], where: str = "meta_training.ner_source") -> SourceTaggerSettings:
        return super().from_params(params, where)

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        if not isinstance(self.domain, str) or not self.domain:
            check.fail("domain", "allowed: the name of an NER domain of `domains:` (e.g. ner)")
        held_out = self.held_out or ()
        if not isinstance(held_out, (list, tuple)) or not all(isinstance(t, str) and t for t in held_out):
            check.fail("held_out", "allowed: a list of entity types (e.g. [PER])")
        object.__setattr__(self, "held_out", tuple(held_out))
        sources = self.sources
        if sources is not None:
            if not isinstance(sources, (list, tuple)) or not all(isinstance(name, str) and name for name in sources):
                check.fail("sources", "allowed: a list of NER corpora of `meta_sources:` (e.g. [crossner_ai]), "
                                      "or null for all of them")
            object.__setattr__(self, "sources", tuple(sources))
        check.integer("source_repeat", 1)
        names = self.type_names
        if not isinstance(names, Mapping) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                     for k, v in names.items()):
            check.fail("type_names", "allowed: a mapping of entity type -> new name (e.g. {PER: person})")
        adaptation = self.adaptation
        if not isinstance(adaptation, AdaptationConfig):
            adaptation = AdaptationConfig.from_params(adaptation, f"{where}.adaptation")
            object.__setattr__(self, "adaptation", adaptation)
        if adaptation.frozen_encoder:
            raise ConfigError(f"{where}.adaptation.strategy is '{adaptation.strategy.short}'; a source tagger "
                              f"fine-tunes its encoder: full or lora (finetune_all or finetune_lora)")


__all__ = ["HeldOutLeakError", "SourceTaggerSettings", "check_no_leak", "hold_out_types", "pretrain_tagger",
           "renamed_types", "source_sentences"]
