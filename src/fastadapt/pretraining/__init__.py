"""Self-supervised pretraining of a backbone on the unlabelled pool (masked-LM, SimCSE, or both).

`pretrain(texts, config, tokenizer)` loads the backbone (`minilm-l6`: continued pretraining, its
masked-LM head starts fresh; `tiny-bert`: from scratch with our WordPiece tokeniser), trains it
with `fastadapt.models.training.train_model` on length-bucketed batches, in this process or, when
`config.distributed` asks for more than one, in several processes through PyTorch's elastic
launcher, and returns the trained `Backbone` (encoder + tokeniser; the heads are dropped) with the
training history.

Checkpoints (`training.checkpoint_dir`) go to a sub-folder named by a fingerprint of the texts
and of every setting that changes the result (`fastadapt.models.checkpoints`, the project's one
rule), so a rerun with the same data and settings resumes (or returns at once when finished), and
a changed configuration starts afresh; a run stopped by its time budget continues when started
again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from fastadapt.models.backbones import Backbone, load_backbone
from fastadapt.models.checkpoints import checkpoint_fingerprint as fingerprint
from fastadapt.models.distributed import run_distributed
from fastadapt.models.training import TrainingResult, distributed_context, train_model
from fastadapt.pretraining.config import OBJECTIVES, DistributedConfig, PretrainingConfig
from fastadapt.pretraining.data import PretrainingBatches, build_batches, validation_loss
from fastadapt.pretraining.objectives import PretrainingModel, mask_tokens, pretraining_loss, simcse_loss

log = logging.getLogger(__name__)

__all__ = [
    "OBJECTIVES",
    "DistributedConfig",
    "PretrainingBatches",
    "PretrainingConfig",
    "PretrainingModel",
    "PretrainingOutput",
    "build_batches",
    "checkpoint_fingerprint",
    "mask_tokens",
    "pretrain",
    "pretraining_loss",
    "simcse_loss",
    "validation_loss",
]


@dataclass
class PretrainingOutput:
    backbone: Backbone  # the trained encoder (on the CPU, in eval mode) and its tokeniser
    result: TrainingResult


def checkpoint_fingerprint(texts: Sequence[str], config: PretrainingConfig, tokenizer: Any = None) -> str:
    """The checkpoint folder's name: `models.checkpoints.checkpoint_fingerprint` of the settings
    (of the distributed ones, only the world size shapes the weights), the tokeniser's vocabulary
    (tiny-bert) and the texts."""
    identity = {"config": {**dataclasses.asdict(config), "distributed": {"world_size": config.distributed.world_size}}}
    if tokenizer is not None:
        identity["vocabulary"] = sorted(_tokenizer_object(tokenizer).get_vocab().items())
    return fingerprint(identity, texts)


def _tokenizer_object(tokenizer: Any) -> Any:
    """The tokeniser inside a `SavedTokenizer` (the features pipeline's dataset), or itself."""
    return getattr(tokenizer, "tokenizer", tokenizer)


def _train(texts: Sequence[str], config: PretrainingConfig, tokenizer: Any, progress: bool) -> PretrainingOutput:
    seed = config.training.seed
    backbone = load_backbone(config.backbone, tokenizer=_tokenizer_object(tokenizer), seed=seed,
                             config_overrides=config.backbone_config or None)
    torch.manual_seed(seed)  # the fresh heads start from the seed
    model = PretrainingModel(backbone.model, config.objectives, config.temperature, config.pooling)
    train_batches, validation_batches = build_batches(backbone.tokenizer, texts, config)
    rank, _ = distributed_context()
    if rank == 0:
        log.info("pretraining %s on %d texts (%d batches an epoch, %.1f %% padding), %d held out; objectives %s",
                 config.backbone, len(train_batches.texts), train_batches.num_batches(0),
                 100 * train_batches.padding_fraction(0),
                 len(validation_batches.texts) if validation_batches else 0, config.active_objectives)
    validate = partial(validation_loss, batches=validation_batches) if validation_batches else None
    result = train_model(model, pretraining_loss, train_batches, config.training, validate=validate,
                         description=f"pretraining {config.backbone}", progress=progress)
    backbone.model.to("cpu").eval()
    return PretrainingOutput(backbone=backbone, result=result)


def _distributed_worker(texts: Sequence[str], config: PretrainingConfig, tokenizer: Any) -> dict[str, Any] | None:
    """One process of a data-parallel run: rank 0 sends the encoder weights and the result back."""
    output = _train(texts, config, tokenizer, progress=True)
    if distributed_context()[0] != 0:
        return None
    state = {key: value.detach().cpu().clone() for key, value in output.backbone.model.state_dict().items()}
    return {"encoder": state, "result": output.result}


def pretrain(texts: Sequence[str], config: PretrainingConfig, tokenizer: Any = None,
             progress: bool = True) -> PretrainingOutput:
    """Pretrain `config.backbone` on `texts`; `tokenizer` (or a SavedTokenizer) is for tiny-bert."""
    texts = [str(text) for text in texts]
    if config.training.checkpoint_dir:
        folder = Path(config.training.checkpoint_dir) / checkpoint_fingerprint(texts, config, tokenizer)
        config = dataclasses.replace(
            config, training=dataclasses.replace(config.training, checkpoint_dir=str(folder)))
    if config.distributed.world_size == 1:
        return _train(texts, config, tokenizer, progress)
    payload = run_distributed(_distributed_worker, (texts, config, tokenizer), config.distributed,
                              where="pretraining.distributed")
    if payload is None:  # another host holds rank 0
        raise RuntimeError(
            "pretraining: this host does not hold global rank 0, so it has no result to save; "
            "save the outputs on the host that does (node_rank 0)"
        )
    backbone = load_backbone(config.backbone, tokenizer=_tokenizer_object(tokenizer), seed=config.training.seed,
                             config_overrides=config.backbone_config or None)
    backbone.model.load_state_dict(payload["encoder"])
    backbone.model.eval()
    return PretrainingOutput(backbone=backbone, result=payload["result"])
