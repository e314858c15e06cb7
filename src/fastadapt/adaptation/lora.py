"""LoRA adapters, named as peft names them: one settings class and one way in and out of a model.

`LoraSettings` holds peft `LoraConfig`'s own keys (`r`, `lora_alpha`, `lora_dropout`,
`target_modules`), so a YAML block reads like peft's documentation. `inject_lora` puts adapters
into a plain `nn.Module` with peft's `inject_adapter_in_model` (the module stays a plain module:
`torch.func.functional_call` and the meta-learners run it as before, and adapter-only training
marks the base weights frozen); `merged_copy` folds them back into the base weights, so a saved
encoder is a plain encoder again. Fine-tuning (`adaptation/fit.py`) and meta-learning
(`meta/learner.py`) both use these two functions.

    settings = LoraSettings.from_params({"r": 4, "lora_alpha": 8}, where="adaptation.strategies.lora.lora")
    encoder = inject_lora(copy.deepcopy(backbone.model), settings)
    plain = merged_copy(encoder)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from fastadapt.config import Checks, Settings

ALL_LINEAR = "all-linear"  # peft's shortcut for every linear layer but the output


@dataclass(frozen=True)
class LoraSettings(Settings):
    """peft `LoraConfig` options: rank, scaling alpha, dropout, which linear layers get adapters."""

    r: int = 8
    lora_alpha: float = 16
    lora_dropout: float = 0.1
    # BERT-family names (MiniLM and tiny-bert are BERT models); "all-linear" is peft's shortcut.
    target_modules: tuple[str, ...] | str = ("query", "value")

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        check.integer("r", 1)
        check.number("lora_alpha", 0, strict_low=True)
        check.number("lora_dropout", 0, 1, strict_high=False)
        targets = self.target_modules
        if isinstance(targets, str):
            if targets != ALL_LINEAR:
                check.fail("target_modules", f"allowed: a list of module names (e.g. [query, value]) or '{ALL_LINEAR}'")
        elif not (isinstance(targets, (list, tuple)) and targets and all(isinstance(t, str) and t for t in targets)):
            check.fail("target_modules", f"allowed: a non-empty list of module names or '{ALL_LINEAR}'")
        else:
            object.__setattr__(self, "target_modules", tuple(targets))  # YAML lists, hashable

    def peft_config(self) -> Any:
        from peft import LoraConfig

        targets = self.target_modules if isinstance(self.target_modules, str) else list(self.target_modules)
        return LoraConfig(r=self.r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=targets, bias="none")


def inject_lora(module: Any, settings: LoraSettings) -> Any:
    """`module` with LoRA adapters injected in place (peft `inject_adapter_in_model`): only the
    adapters are trainable; the adapters' random initialisation draws from torch's generator."""
    from peft import inject_adapter_in_model

    return inject_adapter_in_model(settings.peft_config(), module)


def merged_copy(encoder: Any) -> Any:
    """A copy of an encoder with LoRA adapters (from `inject_lora`) merged into the base weights
    and the adapter modules replaced by their base layers."""
    encoder = copy.deepcopy(encoder)
    for name, module in list(encoder.named_modules()):
        if hasattr(module, "base_layer") and hasattr(module, "merge"):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = encoder.get_submodule(parent_name) if parent_name else encoder
            setattr(parent, child, module.base_layer)
    return encoder


__all__ = ["ALL_LINEAR", "LoraSettings", "inject_lora", "merged_copy"]
