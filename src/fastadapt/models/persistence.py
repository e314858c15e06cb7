"""Model files that never run code when loaded: a folder with a manifest, never a pickle.

Every saved model is a folder holding ``fastadapt_model.json`` (the manifest) and the model's
files:

- models with ``save_directory`` / ``load_directory`` (the encoders, taggers, meta-learners)
  write safetensors weights and JSON configs there; the manifest names their class, and only a
  class of the ``fastadapt`` package is ever imported from a manifest;
- the classical baselines (TF-IDF + logistic regression, the CRF tagger) are written with skops
  (``model.skops``: the fitted arrays and parameters, no byte code) and loaded with an explicit
  list of trusted types (:data:`TRUSTED_TYPES`), so an edited file naming another type is refused.

Pickle files (``pickle``, ``joblib``, ``cloudpickle``) are refused outright: unpickling runs
whatever the file says. Every refusal is one :class:`UnsafeModelError` line naming the file.

Usage::

    save_model(model, "data/06_models/x")     # a folder
    model = load_model("data/06_models/x")
"""

from __future__ import annotations

import importlib
import json
import zipfile
from pathlib import Path
from typing import Any

from fastadapt.errors import UserInputError

MANIFEST = "fastadapt_model.json"
SKOPS_FILE = "model.skops"
PACKAGE = "fastadapt"
# Every type a saved baseline holds beyond skops's own safe defaults (numpy, scipy, scikit-learn):
# the two fastadapt baselines and what sklearn-crfsuite keeps inside its CRF (the crfsuite model
# bytes as a FileResource and the parsed training log).
TRUSTED_TYPES = (
    "fastadapt.models.baselines.CrfTagger",
    "fastadapt.models.baselines.TfidfLogisticRegression",
    "pycrfsuite._logparser.TrainLogParser",
    "sklearn_crfsuite._fileresource.FileResource",
    "sklearn_crfsuite.estimator.CRF",
)
# The first bytes of a pickle (protocol 2 and later start with the PROTO opcode).
PICKLE_MAGIC = b"\x80"
SAVE_HINT = "re-save it with fastadapt.models.persistence.save_model (a folder with fastadapt_model.json)"


class UnsafeModelError(UserInputError):
    """A model file that is not a fastadapt model folder, or that names code outside fastadapt."""


def _qualified_name(obj: Any) -> str:
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


def save_model(model: Any, path: str | Path) -> Path:
    """Write ``model`` as a folder at ``path`` (created; files inside are overwritten); returns it.

    Models with ``save_directory`` write their own files; the others must consist of
    :data:`TRUSTED_TYPES` and skops's defaults, so that what is written can be loaded again.
    """
    import skops.io as sio

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    name = _qualified_name(model)
    if not name.startswith(f"{PACKAGE}.") and not name.startswith(f"{PACKAGE}:"):
        raise UnsafeModelError(f"cannot save a {name} model: only fastadapt model classes are saved and loaded")
    if hasattr(model, "save_directory") and hasattr(type(model), "load_directory"):
        model.save_directory(path)
        manifest = {"class": name}
    else:
        data = sio.dumps(model)
        untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
        if untrusted:
            raise UnsafeModelError(f"cannot save a {name} model: it holds types {untrusted} outside the trusted "
                                   f"list of fastadapt.models.persistence.TRUSTED_TYPES")
        (path / SKOPS_FILE).write_bytes(data)
        manifest = {"class": name, "format": "skops", "file": SKOPS_FILE}
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return path


def _manifest_class(path: Path) -> tuple[str, str, dict[str, Any]]:
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        module_name, class_name = manifest["class"].split(":", 1)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UnsafeModelError(f"'{manifest_path}' is not a valid manifest: it must be JSON with "
                               f'"class": "fastadapt.<module>:<Class>"; {SAVE_HINT}') from None
    if module_name != PACKAGE and not module_name.startswith(f"{PACKAGE}."):
        raise UnsafeModelError(f"'{manifest_path}' names class '{module_name}:{class_name}'; only classes of the "
                               f"fastadapt package are loaded from a manifest")
    return module_name, class_name, manifest


def _load_skops(file: Path) -> Any:
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.load(file, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as error:
        raise UnsafeModelError(f"'{file}' holds types outside fastadapt.models.persistence.TRUSTED_TYPES "
                               f"({error}); refused") from None
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise UnsafeModelError(f"'{file}' is not a readable skops model file ({type(error).__name__}); "
                               f"{SAVE_HINT}") from None


def load_model(path: str | Path) -> Any:
    """The model saved at ``path`` (a model folder, or a bare ``.skops`` file); never unpickles."""
    path = Path(path)
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise UnsafeModelError(f"'{path}' is a folder without {MANIFEST}: not a saved fastadapt model")
        module_name, class_name, manifest = _manifest_class(path)
        if manifest.get("format") == "skops":
            model = _load_skops(path / str(manifest.get("file", SKOPS_FILE)))
            if _qualified_name(model) != f"{module_name}:{class_name}":
                raise UnsafeModelError(f"'{path}': {SKOPS_FILE} holds a {_qualified_name(model)}, not the "
                                       f"{module_name}:{class_name} its manifest names; refused")
            return model
        try:
            model_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            raise UnsafeModelError(f"'{path / MANIFEST}' names class '{module_name}:{class_name}', which this "
                                   f"fastadapt version does not have") from None
        if not callable(getattr(model_class, "load_directory", None)):
            raise UnsafeModelError(f"'{path / MANIFEST}' names '{module_name}:{class_name}', which is not a "
                                   f"model class (no load_directory)")
        return model_class.load_directory(path)
    if not path.is_file():
        raise UnsafeModelError(f"'{path}' does not exist: give a model folder written by fastadapt")
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK"):  # a zip: what skops writes
        model = _load_skops(path)
        if not _qualified_name(model).startswith(f"{PACKAGE}."):
            raise UnsafeModelError(f"'{path}' holds a {_qualified_name(model)}, not a fastadapt model; refused")
        return model
    what = "a pickle file" if head.startswith(PICKLE_MAGIC) or path.suffix in {".pkl", ".pickle", ".joblib"} \
        else "not a fastadapt model file"
    raise UnsafeModelError(f"'{path}' is {what}; fastadapt never loads pickles (loading one can run code): "
                           f"{SAVE_HINT}")


__all__ = ["MANIFEST", "TRUSTED_TYPES", "UnsafeModelError", "load_model", "save_model"]
