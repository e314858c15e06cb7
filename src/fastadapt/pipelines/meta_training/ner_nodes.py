"""The released NER learner: a source tagger pre-trained on an NER domain's train split, which
`new_task` adapts for NER tasks (NNShot / StructShot on its encoder with its source transitions,
or its encoder fine-tuned with a new head; `fastadapt.adaptation.transfer`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from fastadapt.adaptation.ner import EncoderTagger
from fastadapt.adaptation.transfer import pretrain_tagger
from fastadapt.meta.plan import MetaTrainingPlan
from fastadapt.models.backbones import named_backbone

log = logging.getLogger(__name__)


def ner_source_tagger_node(splits: pd.DataFrame, params: Mapping[str, Any], wordpiece_tokenizer: Any = None,
                           pretrained_backbone: Any = None) -> EncoderTagger:
    """Fine-tune `meta_training.backbone` on the train sentences of `meta_training.ner_source.domain`
    (every type but `held_out`); the tagger keeps the source tag transitions StructShot uses."""
    plan = MetaTrainingPlan.from_params(params).use_threads()
    settings = plan.ner_source_settings
    backbone = named_backbone(plan.backbone, "meta_training.backbone", wordpiece_tokenizer,
                                   pretrained_backbone, seed=settings.adaptation.training.seed)
    train = splits[(splits["split"] == "train") & (splits["tokens"].map(len) > 0)]
    tagger = pretrain_tagger(backbone, [list(t) for t in train["tokens"]], [list(t) for t in train["tags"]],
                             settings.adaptation, held_out=settings.held_out, source=f"{settings.domain} train",
                             progress=True)
    log.info("NER source tagger: %s on %d %s train sentences, tags %s", settings.adaptation.strategy, len(train),
             settings.domain, tagger.tags_)
    return tagger
