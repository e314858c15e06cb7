"""Batched scoring of a dated text stream with any model, and the entities each item names.

- :func:`score_stream`: every item's predicted label and ``negative_score`` from any
  :class:`~fastadapt.models.predictor.TextClassifier`, called on batches of ``batch_size`` texts
  (one ``predict_proba`` call per batch, a progress bar over the batches);
- :func:`extract_entities`: the ticker where the source gives one, else the organisations any
  :class:`~fastadapt.models.predictor.SequenceTagger` finds in the headline, normalised.

Label sets differ between models (``negative/neutral/positive`` for the Financial PhraseBank
model, ``Bearish/Bullish/Neutral`` for the tweets one, emotions for another), so the reported
label goes through ``label_map`` (model class -> reported label, several classes may share one)
and ``negative_score`` is the probability mass of the classes mapped to ``negative_label``.

Nothing here knows Kedro; torch runs only inside a neural model's own ``predict_proba``.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fastadapt.config import Checks, ConfigError, Settings
from fastadapt.models.predictor import PROBA_PREFIX, SequenceTagger, TextClassifier

SCORE_COLUMNS = ["row_id", "predicted", "negative_score"]


def _string_keys(values: Any) -> Any:
    """A mapping with its keys and values as strings (YAML reads `0:` as an int); anything else as is."""
    return {str(k): str(v) for k, v in values.items()} if isinstance(values, Mapping) else values


@dataclass(frozen=True)
class ScoringConfig(Settings):
    """How a stream is scored (`monitoring.scoring`).

    - ``text_column``: the column holding the text (a headline);
    - ``batch_size``: texts per ``predict_proba`` call;
    - ``negative_label``: the reported label whose share the surge test watches;
    - ``label_map``: model class -> reported label (classes not named keep their own name);
    - ``progress``: show a progress bar over the batches.
    """

    text_column: str = "headline"
    batch_size: int = 1024
    negative_label: str = "negative"
    label_map: Mapping[str, str] = field(default_factory=dict)
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "label_map", _string_keys(self.label_map))

    def validate(self, where: str = "monitoring.scoring") -> None:
        check = Checks(self, where)
        check.text("text_column")
        check.integer("batch_size", 1)
        check.text("negative_label")
        check.boolean("progress")
        if not isinstance(self.label_map, Mapping):
            check.fail("label_map", "allowed: a mapping of model class to label, e.g. {Bearish: negative}")

    def reported(self, model_class: str) -> str:
        return self.label_map.get(str(model_class), str(model_class))


def as_text_classifier(model: Any) -> Any:
    """``model`` itself, or the fastadapt classifier inside an MLflow pyfunc model of it.

    So a catalog entry of kedro-mlflow's ``MlflowModelRegistryDataset`` (``models:/<name>@champion``)
    scores like the pickled or directory model it wraps.
    """
    unwrap = getattr(model, "unwrap_python_model", None)
    if callable(unwrap):
        inner = unwrap()
        classifier = getattr(inner, "classifier", None)
        if classifier is None:
            raise TypeError(f"the MLflow model wraps {type(inner).__name__}, not a fastadapt TextClassifierModel")
        return classifier
    return model


def _check_classifier(model: Any) -> list[str]:
    if not isinstance(model, TextClassifier):
        raise TypeError(
            f"the scoring model must be a TextClassifier (classes_, predict, predict_proba); "
            f"got {type(model).__name__}"
        )
    classes = [str(c) for c in model.classes_]
    if len(set(classes)) != len(classes):
        raise ValueError(f"model.classes_ must be distinct; got {classes}")
    return classes


def score_texts(
    model: TextClassifier,
    texts: Sequence[str],
    batch_size: int = 1024,
    progress: bool = True,
    desc: str = "scoring",
) -> np.ndarray:
    """Class probabilities (n, n_classes) in ``model.classes_`` order, in batches of texts."""
    classes = _check_classifier(model)
    texts = [str(t) for t in texts]
    output = np.zeros((len(texts), len(classes)), dtype=np.float64)
    starts = range(0, len(texts), batch_size)
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress, leave=False) as bar:
        for start in starts:
            batch = texts[start:start + batch_size]
            proba = np.asarray(model.predict_proba(batch), dtype=np.float64)
            if proba.shape != (len(batch), len(classes)):
                raise ValueError(
                    f"model.predict_proba returned shape {proba.shape} for {len(batch)} texts and "
                    f"{len(classes)} classes; expected ({len(batch)}, {len(classes)})"
                )
            output[start:start + len(batch)] = proba
            bar.update(len(batch))
    return output


def reported_probabilities(
    proba: np.ndarray, classes: Sequence[str], config: ScoringConfig
) -> tuple[list[str], np.ndarray]:
    """The reported labels (first-seen order) and their summed probabilities (n, n_labels)."""
    labels = list(dict.fromkeys(config.reported(c) for c in classes))
    index = {label: i for i, label in enumerate(labels)}
    merge = np.zeros((len(classes), len(labels)))
    for row, model_class in enumerate(classes):
        merge[row, index[config.reported(model_class)]] = 1.0
    return labels, proba @ merge


def score_stream(
    stream: pd.DataFrame, model: TextClassifier, config: ScoringConfig | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every item scored: ``row_id, predicted, negative_score, proba__<model class>...``.

    ``predicted`` is the reported label with the highest summed probability (the arg-max of
    ``predict_proba`` when ``label_map`` is empty); ``negative_score`` is the probability mass
    of the classes reported as ``negative_label``. Also returns timing statistics
    (``n_items, seconds, items_per_second, batch_size, classes``).
    """
    config = config or ScoringConfig()
    for column in ("row_id", config.text_column):
        if column not in stream.columns:
            raise KeyError(f"the stream has no column '{column}' (columns: {list(stream.columns)})")
    classes = _check_classifier(model)
    labels = list(dict.fromkeys(config.reported(c) for c in classes))
    if config.negative_label not in labels:
        raise ValueError(
            f"scoring.negative_label '{config.negative_label}' is none of the model's labels "
            f"{labels} (classes {classes}); set scoring.negative_label to one of them, or map "
            f"classes to it with scoring.label_map"
        )
    texts = stream[config.text_column].fillna("").astype(str).tolist()
    started = time.perf_counter()
    proba = score_texts(model, texts, config.batch_size, config.progress)
    seconds = time.perf_counter() - started
    labels, summed = reported_probabilities(proba, classes, config)
    predicted = np.asarray(labels, dtype=object)[summed.argmax(axis=1)] if len(texts) else []
    scores = pd.DataFrame(
        {
            "row_id": stream["row_id"].to_numpy(),
            "predicted": pd.array(list(predicted), dtype="string"),
            "negative_score": summed[:, labels.index(config.negative_label)],
        }
    )
    probas = pd.DataFrame(proba, columns=[f"{PROBA_PREFIX}{c}" for c in classes])
    stats = {
        "n_items": len(texts),
        "seconds": round(seconds, 4),
        "items_per_second": round(len(texts) / seconds, 1) if seconds > 0 else None,
        "batch_size": config.batch_size,
        "classes": classes,
        "labels": labels,
        "negative_label": config.negative_label,
        "model": type(model).__name__,
    }
    return pd.concat([scores, probas], axis=1), stats


# ---- entities ---------------------------------------------------------------------------------

# CoNLL-like tokens: acronyms with dots (U.S.), words with inner hyphens, ampersands or dots
# (AT&T, Rolls-Royce, Amazon.com), the possessive 's on its own, any other symbol on its own.
_TOKEN = re.compile(r"(?:[A-Za-z]\.){2,}|\w+(?:[-&.]\w+)*|['’]s\b|[^\w\s]")
_CORPORATE_SUFFIXES = {
    "inc", "incorporated", "corp", "corporation", "co", "ltd", "limited", "plc", "llc", "ag",
    "sa", "nv", "se",
}
_EDGE_PUNCTUATION = "\"'“”‘’`.,;:!?()[]{}<>-–—"


def tokenize_headline(text: str) -> list[str]:
    """A simple CoNLL-like tokenisation: words, acronyms and punctuation marks as tokens."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", str(text)))


def normalise_ticker(value: object) -> str | None:
    """``$tsla`` / `` TSLA `` -> ``TSLA``; missing or empty -> None."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    ticker = str(value).strip().lstrip("$").strip().upper()
    return ticker or None


def normalise_entity(
    name: str, aliases: Mapping[str, str] | None = None, min_length: int = 2
) -> str | None:
    """An organisation name in one canonical spelling, or None when nothing useful is left.

    Unicode NFKC, whitespace collapsed, quotes and punctuation stripped at the edges, a final
    possessive 's and corporate suffixes (Inc, Corp, Ltd, plc...) dropped; then ``aliases``
    (keys compared case-insensitively) map spellings to one name, e.g. ``{Tesla: TSLA}``.
    """
    text = unicodedata.normalize("NFKC", str(name))
    text = re.sub(r"\s*(['’]s)$", "", " ".join(text.split()))
    words = text.strip(_EDGE_PUNCTUATION + " ").split()
    while len(words) > 1 and words[-1].strip(".,").lower() in _CORPORATE_SUFFIXES:
        words.pop()
    text = " ".join(words).strip(_EDGE_PUNCTUATION + " ")
    if len(text) < min_length or not any(ch.isalpha() for ch in text):
        return None
    if aliases:
        lookup = {str(k).casefold(): str(v) for k, v in aliases.items()}
        text = lookup.get(text.casefold(), text)
    return text


def tagged_spans(tokens: Sequence[str], tags: Sequence[str], types: Sequence[str]) -> list[str]:
    """The surface strings of the IOB2 entities of the given types, in order (duplicates kept)."""
    spans: list[str] = []
    current: list[str] = []
    current_type: str | None = None
    for token, tag in zip(tokens, tags):
        if tag.startswith("I-") and current and tag[2:] == current_type:
            current.append(token)
            continue
        if current and current_type in types:
            spans.append(" ".join(current))
        current, current_type = ([token], tag[2:]) if tag[:2] in ("B-", "I-") else ([], None)
    if current and current_type in types:
        spans.append(" ".join(current))
    return spans


@dataclass(frozen=True)
class EntityConfig(Settings):
    """How entities are found (`monitoring.entities`).

    - ``ticker_column``: the source's own entity (a ticker); used where present;
    - ``entity_types``: the NER types kept (IOB2 type names, e.g. ORG);
    - ``aliases``: spelling -> canonical name, e.g. ``{Tesla: TSLA, Apple: AAPL}`` (the list the
      project uses is in ``conf/base/parameters_monitoring.yml``: data, not a default);
    - ``tag_when_ticker``: also run the tagger on items that have a ticker (off: the ticker alone);
    - ``batch_size``: token lists per tagger call; ``min_length``: shortest name kept.
    """

    ticker_column: str | None = "ticker"
    entity_types: tuple[str, ...] = ("ORG",)
    aliases: Mapping[str, str] = field(default_factory=dict)
    tag_when_ticker: bool = False
    batch_size: int = 2048
    min_length: int = 2
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.entity_types, list):
            object.__setattr__(self, "entity_types", tuple(self.entity_types))
        object.__setattr__(self, "aliases", _string_keys(self.aliases))

    def validate(self, where: str = "monitoring.entities") -> None:
        check = Checks(self, where)
        check.text("ticker_column", optional=True)
        check.integer("batch_size", 1)
        check.integer("min_length", 1)
        check.boolean("tag_when_ticker")
        check.boolean("progress")
        types = self.entity_types
        if not isinstance(types, tuple) or not all(isinstance(t, str) and t for t in types):
            check.fail("entity_types", "allowed: a list of entity types, e.g. [ORG]")
        if not isinstance(self.aliases, Mapping):
            check.fail("aliases", "allowed: a mapping of name to canonical name, e.g. {Tesla: TSLA}")


def extract_entities(
    stream: pd.DataFrame,
    tagger: SequenceTagger | None,
    config: EntityConfig | None = None,
    text_column: str = "headline",
) -> pd.DataFrame:
    """``row_id, entities, entity_source``: each item's distinct normalised entities (a list).

    The ticker where ``ticker_column`` has one (``entity_source`` = ``ticker``); else the
    ``entity_types`` entities ``tagger`` finds in the tokenised text (``ner``); ``none`` when
    neither gives anything. With ``tagger`` None only tickers are used.
    """
    config = config or EntityConfig()
    if "row_id" not in stream.columns or text_column not in stream.columns:
        raise KeyError(f"the stream needs columns row_id and {text_column} (has {list(stream.columns)})")
    if tagger is not None and not isinstance(tagger, SequenceTagger):
        raise TypeError(f"the NER model must be a SequenceTagger (predict(token_lists)); got {type(tagger).__name__}")
    if config.ticker_column and config.ticker_column in stream.columns:
        tickers = [normalise_ticker(v) for v in stream[config.ticker_column]]
    else:
        tickers = [None] * len(stream)
    entities: list[list[str]] = [[t] if t else [] for t in tickers]
    aliases = config.aliases
    if aliases:
        entities = [[aliases.get(t, t) for t in row] for row in entities]
    sources = ["ticker" if row else "none" for row in entities]

    if tagger is not None:
        positions = [i for i, t in enumerate(tickers) if config.tag_when_ticker or not t]
        texts = stream[text_column].fillna("").astype(str).to_numpy()
        with tqdm(total=len(positions), desc="entities", unit="text", disable=not config.progress,
                  leave=False) as bar:
            for start in range(0, len(positions), config.batch_size):
                chunk = positions[start:start + config.batch_size]
                token_lists = [tokenize_headline(texts[i]) for i in chunk]
                tag_lists = tagger.predict(token_lists)
                if len(tag_lists) != len(token_lists):
                    raise ValueError(
                        f"tagger.predict returned {len(tag_lists)} tag lists for {len(token_lists)} texts"
                    )
                for i, tokens, tags in zip(chunk, token_lists, tag_lists):
                    names = [normalise_entity(span, aliases, config.min_length)
                             for span in tagged_spans(tokens, list(tags), config.entity_types)]
                    found = [n for n in names if n]
                    if found:
                        entities[i] = list(dict.fromkeys(entities[i] + found))
                        if sources[i] == "none":
                            sources[i] = "ner"
                bar.update(len(chunk))
    return pd.DataFrame(
        {
            "row_id": stream["row_id"].to_numpy(),
            "entities": pd.Series([list(dict.fromkeys(row)) for row in entities], dtype=object).to_numpy(),
            "entity_source": pd.array(sources, dtype="string"),
        }
    )


# ---- the stream ---------------------------------------------------------------------------------

STREAM_COLUMNS = ["row_id", "published_at", "source", "headline", "ticker", "label"]


def select_stream(stream: pd.DataFrame, sources: Sequence[str] | None) -> pd.DataFrame:
    """The stream's rows from `sources` (all when None), in row_id order."""
    if sources:
        known = sorted(stream["source"].astype(str).unique())
        unknown = sorted(set(sources) - set(known))
        if unknown:
            raise ConfigError(f"monitoring.sources names {unknown}, which the stream does not have (sources: {known})")
        stream = stream[stream["source"].isin(sources)]
    return stream.sort_values("row_id").reset_index(drop=True)


def join_scores(stream: pd.DataFrame, scores: pd.DataFrame, entities: pd.DataFrame) -> pd.DataFrame:
    """The stream with its scores and entities: one row per item, ``entities`` always a list."""
    kept = [c for c in STREAM_COLUMNS if c in stream.columns]
    scored = stream[kept].merge(scores, on="row_id", how="inner", validate="one_to_one")
    scored = scored.merge(entities, on="row_id", how="left", validate="one_to_one")
    if len(scored) != len(stream):
        raise ValueError(f"{len(stream)} headlines but {len(scored)} scored rows: the scores are stale")
    scored["entities"] = [list(e) if isinstance(e, (list, tuple, np.ndarray)) else [] for e in scored["entities"]]
    return scored
