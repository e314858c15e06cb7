"""`EncoderClassifier`: a backbone, a pooling and a head, behind the `TextClassifier` protocol.

Every strategy ends in the same object: full fine-tuning and LoRA (merged) change the encoder,
`head` and `prototype` keep it frozen and differ only in the head. Because the frozen-encoder
variants see nothing but pooled features, they can be fitted and scored on features computed
once per domain (`predict_proba_features`), which is what the pipeline does for the k-shot sets.

On disk (`save_directory`): the backbone's own files in `backbone/` (safetensors weights, config,
tokeniser), the head's tensors in `head.safetensors`, everything else in `classifier.json`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fastadapt.adaptation.strategies import AdaptStrategy
from fastadapt.models.backbones import Backbone
from fastadapt.models.encoder import embed_texts, pool_hidden_states, resolve_device

HEAD_FILE = "head.safetensors"
INFO_FILE = "classifier.json"
BACKBONE_DIR = "backbone"


def token_limit(backbone: Backbone, max_length: int) -> int:
    """`max_length`, capped by what the encoder's position embeddings and tokeniser allow."""
    limits = [max_length, getattr(backbone.model.config, "max_position_embeddings", None),
              getattr(backbone.tokenizer, "model_max_length", None)]
    return int(min(limit for limit in limits if isinstance(limit, int) and 0 < limit < 1_000_000))


class LinearHead(nn.Module):
    """Dropout and one linear layer: features -> logits."""

    kind = "linear"

    def __init__(self, hidden_size: int, n_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden_size, self.n_classes, self.dropout_p = hidden_size, n_classes, dropout
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(features))

    def settings(self) -> dict[str, Any]:
        return {"head": self.kind, "hidden_size": self.hidden_size, "n_classes": self.n_classes,
                "dropout": self.dropout_p}


class PrototypeHead(nn.Module):
    """One prototype per class, the mean of its support features (Snell et al. 2017, ProtoNets).

    cosine: logits = temperature * cos(x, prototype), a softmax over a bounded similarity that
    the temperature sharpens; euclidean: logits = -||x - prototype||^2, the ProtoNet rule.
    """

    kind = "prototype"

    def __init__(self, prototypes: torch.Tensor, metric: str = "cosine", temperature: float = 10.0,
                 active: torch.Tensor | None = None) -> None:
        super().__init__()
        if metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be 'cosine' or 'euclidean'; got {metric!r}")
        self.register_buffer("prototypes", prototypes.detach().clone().float())
        # Classes without support examples (an NER tag never seen) have no prototype: never chosen.
        active = torch.ones(len(prototypes)) if active is None else active.detach().clone().float()
        self.register_buffer("active", active)
        self.metric, self.temperature = metric, float(temperature)

    @classmethod
    def from_features(cls, features: torch.Tensor, targets: torch.Tensor, n_classes: int,
                      metric: str = "cosine", temperature: float = 10.0) -> PrototypeHead:
        prototypes = torch.zeros(n_classes, features.shape[1], dtype=torch.float32)
        prototypes.index_add_(0, targets, features.float())
        counts = torch.bincount(targets, minlength=n_classes)
        return cls(prototypes / counts.clamp(min=1).unsqueeze(1), metric, temperature, active=(counts > 0).float())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = features.float()
        if self.metric == "cosine":
            logits = self.temperature * (
                nn.functional.normalize(features, dim=-1) @ nn.functional.normalize(self.prototypes, dim=-1).T
            )
        else:
            shape = features.shape
            logits = -torch.cdist(features.reshape(-1, shape[-1]), self.prototypes).pow(2).reshape(*shape[:-1], -1)
        return logits.masked_fill(self.active < 0.5, -1e4)

    def settings(self) -> dict[str, Any]:
        return {"head": self.kind, "metric": self.metric, "temperature": self.temperature,
                "n_classes": int(self.prototypes.shape[0]), "hidden_size": int(self.prototypes.shape[1])}


def head_from_settings(settings: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    """Rebuild a head from its `settings()` and saved tensors."""
    if settings["head"] == LinearHead.kind:
        head = LinearHead(settings["hidden_size"], settings["n_classes"], settings.get("dropout", 0.0))
        head.load_state_dict(state)
        return head
    if settings["head"] == PrototypeHead.kind:
        return PrototypeHead(state["prototypes"], settings["metric"], settings["temperature"], state.get("active"))
    if settings["head"] == "nearest":
        from fastadapt.adaptation.nnshot import NearestNeighbourHead

        return NearestNeighbourHead(state["support"], state["targets"], settings["n_classes"], settings["temperature"])
    raise ValueError(f"unknown head kind {settings['head']!r} in a saved model")


class PooledClassifierModule(nn.Module):
    """Encoder -> pooled (optionally L2-normalised) features -> head: what full and LoRA train."""

    def __init__(self, encoder: nn.Module, head: nn.Module, pooling: str = "mean", normalize: bool = False) -> None:
        super().__init__()
        self.encoder, self.head, self.pooling, self.normalize = encoder, head, pooling, normalize

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        features = pool_hidden_states(hidden, attention_mask, self.pooling)
        if self.normalize:
            features = nn.functional.normalize(features, dim=-1)
        return self.head(features)


def save_parts(directory: str | Path, backbone: Backbone, head: nn.Module, info: dict[str, Any], info_file: str) -> None:
    """Backbone files, head tensors and the JSON description, into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    backbone.save_directory(directory / BACKBONE_DIR)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in head.state_dict().items()}
    save_file(state, str(directory / HEAD_FILE))
    (directory / info_file).write_text(json.dumps({**info, "head_settings": head.settings()}, indent=2))


def load_parts(directory: str | Path, info_file: str) -> tuple[Backbone, nn.Module, dict[str, Any]]:
    directory = Path(directory)
    info_path = directory / info_file
    if not info_path.is_file():
        raise FileNotFoundError(f"'{directory}' holds no {info_file}; it is not a saved fastadapt adapted model")
    info = json.loads(info_path.read_text())
    backbone = Backbone.load_directory(directory / BACKBONE_DIR)
    head = head_from_settings(info["head_settings"], load_file(str(directory / HEAD_FILE)))
    return backbone, head, info


class EncoderClassifier:
    """A fitted text classifier on a transformer encoder (see the module docstring).

    classes_: class names, the column order of `predict_proba`.
    """

    def __init__(
        self,
        backbone: Backbone,
        head: nn.Module,
        classes: Sequence[str],
        *,
        strategy: AdaptStrategy | str,
        pooling: str = "mean",
        normalize: bool = False,
        max_length: int = 256,
        batch_size: int = 64,
        device: str = "auto",
        training: dict[str, Any] | None = None,
    ) -> None:
        self.backbone, self.head = backbone, head.eval()
        self.classes_: list[str] = [str(c) for c in classes]
        # `parse`: folders saved before the one vocabulary hold short names (head, full, lora).
        self.strategy = AdaptStrategy.parse(strategy, "strategy", short_names=True)
        self.pooling, self.normalize = pooling, normalize
        self.max_length, self.batch_size, self.device = max_length, batch_size, device
        self.training = dict(training or {})

    @property
    def encoder_tuned(self) -> bool:
        """Whether fitting changed the encoder (the contrastive step ran), so that features cached
        for the encoder it started from no longer describe this model's inputs."""
        step = self.training.get("contrastive") or {}
        return bool(step) and "skipped" not in step

    # -- features ---------------------------------------------------------------------------
    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Pooled, un-normalised encoder features (n, hidden): what a per-domain cache stores."""
        return embed_texts(self.backbone, list(texts), batch_size=self.batch_size,
                           max_length=token_limit(self.backbone, self.max_length),
                           pooling=self.pooling, normalize=False, device=self.device, progress=progress)

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities from pooled, un-normalised features (as `embed` returns them)."""
        target = resolve_device(self.device)
        head = self.head.to(target).eval()
        output = np.zeros((len(features), len(self.classes_)), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(features), 4096):
                x = torch.as_tensor(np.asarray(features[start:start + 4096], dtype=np.float32), device=target)
                if self.normalize:
                    x = nn.functional.normalize(x, dim=-1)
                output[start:start + len(x)] = torch.softmax(head(x).float(), dim=-1).cpu().numpy()
        return output

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes_, dtype=object)[self.predict_proba_features(features).argmax(axis=1)]

    # -- TextClassifier -----------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """An array (n_texts, n_classes) of class probabilities, columns in `classes_` order."""
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, len(self.classes_)), dtype=np.float64)
        return self.predict_proba_features(self.embed(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """The most probable class per text (object array of str)."""
        return np.asarray(self.classes_, dtype=object)[self.predict_proba(texts).argmax(axis=1)]

    # -- persistence ----------------------------------------------------------------------------
    def save_directory(self, directory: str | Path) -> None:
        info = {"classes": self.classes_, "strategy": self.strategy, "pooling": self.pooling,
                "normalize": self.normalize, "max_length": self.max_length, "batch_size": self.batch_size,
                "training": self.training}
        save_parts(directory, self.backbone, self.head, info, INFO_FILE)

    @classmethod
    def load_directory(cls, directory: str | Path) -> EncoderClassifier:
        backbone, head, info = load_parts(directory, INFO_FILE)
        return cls(backbone, head, info["classes"], strategy=info["strategy"], pooling=info["pooling"],
                   normalize=info["normalize"], max_length=info["max_length"], batch_size=info["batch_size"],
                   training=info.get("training"))

    def __repr__(self) -> str:
        return (f"EncoderClassifier(backbone={self.backbone.name!r}, strategy={self.strategy!r}, "
                f"classes={len(self.classes_)})")


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, not a single string")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}] must be a string; got {type(text).__name__} {text!r}")
    return texts
