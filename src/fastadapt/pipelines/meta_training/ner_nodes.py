"""The released NER learner: a source tagger pre-trained on an NER domain's train split and those
of other NER corpora (`meta_training.ner_source.sources`), which
`new_task` adapts for NER tasks (NNShot / StructShot on its encoder with its source transitions,
or its encoder fine-tuned with a new head; `fastadapt.adaptation.transfer`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from fastadapt.adaptation.ner import EncoderTagger
from fastadapt.adaptation.transfer import pretrain_tagger, source_sentences
from fastadapt.meta.plan import MetaTrainingPlan
from fastadapt.models.backbones import named_backbone

log = logging.getLogger(__name__)


def ner_source_tagger_node(splits: pd.DataFrame, params: Mapping[str, Any], wordpiece_tokenizer: Any = None,
                           pretrained_backbone: Any = None, **source_splits: pd.DataFrame) -> EncoderTagger:
    """Fine-tune `meta_training.backbone` on the train sentences of `meta_training.ner_source.domain`
    (its types renamed by `type_names`) and of the NER corpora `source_splits` (`<corpus>_splits`
    tables: `ner_source.sources`, each sentence `source_repeat` times), every type but `held_out`;
    the tagger keeps the source tag transitions StructShot uses."""
    plan = MetaTrainingPlan.from_params(params).use_threads()
    settings = plan.ner_source_settings
    backbone = named_backbone(plan.backbone, "meta_training.backbone", wordpiece_tokenizer,
                              pretrained_backbone, seed=settings.adaptation.training.seed)
    sources = {name.removesuffix("_splits"): table for name, table in source_splits.items()}
    tokens, tags, source = source_sentences({settings.domain: splits, **sources}, settings.type_names,
                                            {name: settings.source_repeat for name in sources})
    tagger = pretrain_tagger(backbone, tokens, tags, settings.adaptation, held_out=settings.held_out, source=source,
                             progress=True)
    log.info("NER source tagger: %s on %d sentences (%s), tags %s", settings.adaptation.strategy, len(tokens),
             source, tagger.tags_)
    return tagger
