"""A meta-learned model on disk: the encoder, the algorithm's settings and its own weights.

`MetaLearnedModel` is what the meta-training pipeline writes (`meta_learner` in the catalog, a
`ModelDirectoryDataset`) and what `fastadapt.adapt.adapt` and the `new_task` pipeline read. It
holds the meta-trained algorithm (which holds the `MetaLearner`), the `MetaConfig` that built it
and a small description (class split, best meta-validation accuracy, where it came from).

On disk (`save_directory`):

- `backbone/`: the encoder as a plain backbone (safetensors, config, tokeniser; LoRA adapters
  merged): loadable on its own with `load_backbone(".../backbone")`, so any adaptation strategy
  can start from it;
- `meta_state.safetensors`: the algorithm's weights that the backbone folder does not hold (the
  linear head, Meta-SGD learning rates; the whole encoder too when it carries LoRA adapters);
- `meta_learner.json`: the `MetaConfig` fields and the description.

    model = MetaLearnedModel(algorithm, config, {"class_split": "01"})
    model.save_directory("data/06_models/meta_learner")     # the catalog does this
    model = MetaLearnedModel.load_directory("data/06_models/meta_learner")
    model.adapt(texts, labels).predict(["where is my card?"])
    model.backbone            # a `Backbone` (LoRA adapters merged) for fine-tuning strategies
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from fastadapt.adaptation.lora import merged_copy
from fastadapt.meta.algorithm import MetaAlgorithm
from fastadapt.meta.config import MetaConfig, build_algorithm, build_learner
from fastadapt.meta.learner import AdaptedClassifier, MetaLearner
from fastadapt.models.backbones import Backbone

BACKBONE_DIR = "backbone"
STATE_FILE = "meta_state.safetensors"
INFO_FILE = "meta_learner.json"
ENCODER_PREFIX = "learner.encoder."


class MetaLearnedModel:
    """A meta-trained algorithm with its config and description (see the module docstring)."""

    def __init__(self, algorithm: MetaAlgorithm, config: MetaConfig, info: Mapping[str, Any] | None = None) -> None:
        if not isinstance(algorithm, MetaAlgorithm):
            raise TypeError(f"algorithm must be a MetaAlgorithm, got {type(algorithm).__name__}")
        self.algorithm, self.config, self.info = algorithm, config, dict(info or {})

    # ---- views --------------------------------------------------------------------------------

    @property
    def learner(self) -> MetaLearner:
        return self.algorithm.learner

    @property
    def name(self) -> str:
        """`<algorithm>_<backbone>`, e.g. protonet_minilm-l6."""
        return f"{self.config.algorithm}_{self.learner.backbone_name}"

    @property
    def backbone(self) -> Backbone:
        """The meta-trained encoder as a plain `Backbone` (shares the weights; LoRA merged in a copy)."""
        encoder = self.learner.encoder
        if self.learner.lora is not None:
            encoder = merged_copy(encoder)
        return Backbone(name=self.learner.backbone_name, model=encoder, tokenizer=self.learner.tokenizer)

    def describe(self) -> str:
        """One line for reports: algorithm, backbone, class split and meta-validation accuracy."""
        parts = [f"{self.config.algorithm} on {self.learner.backbone_name}"]
        if self.info.get("class_split") is not None:
            parts.append(f"class split {self.info['class_split']}")
        if self.info.get("best_val_accuracy") is not None:
            parts.append(f"meta-validation accuracy {self.info['best_val_accuracy']:.3f}")
        return ", ".join(parts)

    # ---- adaptation ---------------------------------------------------------------------------

    def adapt(self, support_texts: Sequence[str], support_labels: Sequence[Any]) -> AdaptedClassifier:
        """The algorithm's own adaptation (ProtoNet: prototypes; MAML family: its inner loop)."""
        return self.algorithm.adapt(list(support_texts), [str(label) for label in support_labels])

    # ---- persistence --------------------------------------------------------------------------

    def save_directory(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        learner = self.learner
        lora = learner.lora is not None
        self.backbone.save_directory(directory / BACKBONE_DIR)  # LoRA adapters merged: a plain encoder
        # Without LoRA the backbone folder holds every encoder weight under its own name; with
        # adapters injected the names differ (base_layer, lora_A...), so the state keeps them all.
        extra = {name: tensor.detach().cpu().contiguous() for name, tensor in self.algorithm.state_dict().items()
                 if lora or not name.startswith(ENCODER_PREFIX)}
        save_file(extra, str(directory / STATE_FILE))
        info = {"config": asdict(self.config), "algorithm": self.config.algorithm,
                "backbone": learner.backbone_name, "info": self.info}
        (directory / INFO_FILE).write_text(json.dumps(info, indent=2, default=str))

    @classmethod
    def load_directory(cls, directory: str | Path) -> MetaLearnedModel:
        directory = Path(directory)
        info_path = directory / INFO_FILE
        if not info_path.is_file():
            raise FileNotFoundError(f"'{directory}' holds no {INFO_FILE}; it is not a saved meta-learned model")
        saved = json.loads(info_path.read_text())
        config = MetaConfig.from_saved(saved["config"])
        backbone = Backbone.load_directory(directory / BACKBONE_DIR)
        backbone.name = saved.get("backbone", backbone.name)
        learner = build_learner(backbone, config)
        algorithm = build_algorithm(learner, config)
        state = load_file(str(directory / STATE_FILE))
        missing, unexpected = algorithm.load_state_dict(state, strict=False)
        if unexpected:
            raise ValueError(f"'{directory}': {STATE_FILE} has weights the model does not know: {unexpected[:5]}")
        # The pooler is never used (features pool the token states); a reloaded BERT may add one.
        not_encoder = [name for name in missing if not name.startswith(f"{ENCODER_PREFIX}pooler.")
                       and (not name.startswith(ENCODER_PREFIX) or learner.lora is not None)]
        if not_encoder:
            raise ValueError(f"'{directory}': {STATE_FILE} lacks weights {not_encoder[:5]}")
        algorithm.eval()
        return cls(algorithm, config, saved.get("info"))

    def __repr__(self) -> str:
        return f"MetaLearnedModel({self.describe()})"


__all__ = ["MetaLearnedModel"]
