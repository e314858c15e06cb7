"""The one rule that names a run's checkpoint folder: a fingerprint of what shapes its weights.

A rerun with the same data and settings finds its own checkpoints (and resumes, or returns at
once when finished); a changed configuration starts afresh in another folder. Settings that do
not change the weights' path through training are left out wherever they stand (at any depth of
the settings): the wall-clock budget (a run stopped by `max_seconds` continues when started
again), the device, the thread count, logging and the checkpoint settings themselves.

    folder = run_checkpoint_dir(config.checkpoint_dir, "protonet_s01", {"config": config, "backbone": "minilm-l6"})
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

UNFINGERPRINTED = frozenset({"max_seconds", "device", "num_threads", "log_every", "checkpoint_dir",
                             "checkpoint_every"})


def _weight_settings(value: Any) -> Any:
    """`value` as plain JSON-able data without the UNFINGERPRINTED keys, at any depth."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _weight_settings(v) for k, v in value.items() if k not in UNFINGERPRINTED}
    if isinstance(value, (list, tuple)):
        return [_weight_settings(v) for v in value]
    return value


def checkpoint_fingerprint(identity: Any, texts: Iterable[str] = ()) -> str:
    """A 16-hex sha256 of `identity` (settings, dataclasses, names; UNFINGERPRINTED keys left out)
    and of `texts` in order."""
    digest = hashlib.sha256(json.dumps(_weight_settings(identity), sort_keys=True, default=str).encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()[:16]


def run_checkpoint_dir(root: str | None, name: str, identity: Any) -> str | None:
    """`<root>/<name>-<fingerprint of identity>`, or None when checkpoints are off (`root` None)."""
    if not root:
        return None
    return str(Path(root) / f"{name}-{checkpoint_fingerprint(identity)}")


__all__ = ["UNFINGERPRINTED", "checkpoint_fingerprint", "run_checkpoint_dir"]
