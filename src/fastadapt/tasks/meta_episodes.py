"""Episode sources for meta-training: labelled classes, mixtures, SMLMT and NER (no torch here).

A source is a small object with `sample(rng) -> episode`: everything random comes from the
`numpy.random.Generator` it is given, so the meta-training loop, which draws episode b of step s
with `rng([seed, s, b])`, replays exactly after a resume, and two runs with one seed meet the same
episodes.

- `LabelledEpisodeSource`: N-way K-shot episodes from labelled rows (text, label), drawn by
  `fastadapt.tasks.episodes.sample_episode` (support and query disjoint by construction);
- `MixtureSource`: one of several named sources, chosen with given weights, then its episode;
- `SmlmtSource`: self-supervised episodes from unlabelled text (Bansal et al. 2020, "Self-
  supervised meta-learning for few-shot natural language classification tasks", EMNLP): pick N
  words, take sentences that contain each, mask that word there; the class is the masked word;
- `NerEpisodeSource`: sentences chosen greedily (Yang and Katiyar 2020) so each entity type of the
  episode has K mentions in the support set, and a disjoint query set with its own quota;
- `classes_with_enough_rows`, `pool_texts`: the rows and texts a source may draw from;
- `banking77_class_split`: the train / valid / test class lists of one ProtAugment split.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import pandas as pd

from fastadapt.tasks._tables import require_columns
from fastadapt.tasks.episodes import parse_class_list, sample_episode
from fastadapt.tasks.kshot import entity_mentions

CLASS_SPLIT_PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class TextEpisode:
    """One text-classification episode: texts with their class names, support and query apart.

    `classes` is the episode's label set in sorted order; `*_ids` are the row ids the texts came
    from (SMLMT: sentence positions), kept so that leaks can be checked; `source` names the
    source that drew it (useful in a mixture).
    """

    classes: tuple[str, ...]
    support_texts: tuple[str, ...]
    support_labels: tuple[str, ...]
    query_texts: tuple[str, ...]
    query_labels: tuple[str, ...]
    support_ids: tuple[int, ...] = ()
    query_ids: tuple[int, ...] = ()
    source: str = ""

    @property
    def n_way(self) -> int:
        return len(self.classes)

    def targets(self, role: str) -> np.ndarray:
        """Class indices (into `classes`) of the support or query labels."""
        labels = {"support": self.support_labels, "query": self.query_labels}.get(role)
        if labels is None:
            raise ValueError(f"role must be 'support' or 'query', got {role!r}")
        index = {label: i for i, label in enumerate(self.classes)}
        return np.asarray([index[label] for label in labels], dtype=np.int64)


@dataclass(frozen=True)
class NerEpisode:
    """One NER episode: token lists with IOB2 tags that only name the episode's entity types."""

    entity_types: tuple[str, ...]
    support_tokens: tuple[tuple[str, ...], ...]
    support_tags: tuple[tuple[str, ...], ...]
    query_tokens: tuple[tuple[str, ...], ...]
    query_tags: tuple[tuple[str, ...], ...]
    support_ids: tuple[int, ...] = ()
    query_ids: tuple[int, ...] = ()
    source: str = ""


class EpisodeSource(Protocol):
    """Anything that draws an episode from a generator."""

    def sample(self, rng: np.random.Generator) -> TextEpisode | NerEpisode: ...


def _check_counts(n_way: int | None, k_shot: int, n_query: int, where: str) -> None:
    def positive(name: str, value: object, minimum: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")

    if n_way is not None:
        positive("n_way", n_way, 1)
    positive("k_shot", k_shot, 1)
    positive("n_query", n_query, 0)


def _shape_range(value: object, name: str) -> tuple[tuple[int, int] | None, int | None]:
    """(range or None, the largest value): `n_way` / `k_shot` may be an int or [low, high]."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value) \
                or not 1 <= value[0] <= value[1]:
            raise ValueError(f"LabelledEpisodeSource: {name} as a range must be [low, high] with 1 <= low <= high; "
                             f"got {value!r}")
        return (int(value[0]), int(value[1])), int(value[1])
    return None, value  # type: ignore[return-value]


_GENERIC_LABEL_WORDS = {"label", "labels", "class", "category", "intent", "id"}
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def label_text(label: str) -> str | None:
    """A class name as words (`card_arrival` -> "card arrival", `Banks_1.CheckBalance` -> "check
    balance"), or None when the label is no word (a number, a code): only words help as support."""
    name = str(label).rsplit(".", 1)[-1]
    words = [w.casefold() for w in re.split(r"[\s_\-/]+", _CAMEL.sub(" ", name)) if w]
    words = [w for w in words if not w.isdigit()]
    if not set(words) - _GENERIC_LABEL_WORDS:
        return None
    if not words or not any(len(w) >= 3 and w.isalpha() for w in words):
        return None
    return " ".join(words)


# ---- labelled rows ----------------------------------------------------------------------------


class LabelledEpisodeSource:
    """N-way K-shot episodes from labelled rows (columns text, label; row_id if present).

    Only rows whose label is in `classes` are ever read (all labels when None), so a source built
    on a class split's train classes cannot leak a test class. Episodes follow `sample_episode`:
    classes chosen from the sorted class list, then k + n distinct rows per class from its sorted
    row ids, the first k support, the rest query. `n_way=None` takes every class.
    """

    def __init__(
        self,
        rows: pd.DataFrame,
        classes: Iterable[str] | None = None,
        n_way: int | tuple[int, int] | None = 5,
        k_shot: int | tuple[int, int] = 5,
        n_query: int = 10,
        name: str = "labelled",
        label_names: bool = False,
    ) -> None:
        require_columns(rows, ["text", "label"], "LabelledEpisodeSource")
        self.n_way_range, n_way = _shape_range(n_way, "n_way")
        self.k_shot_range, k_shot = _shape_range(k_shot, "k_shot")
        _check_counts(n_way, k_shot, n_query, "LabelledEpisodeSource")
        labels = rows["label"].astype(str)
        known = set(labels)
        wanted = sorted(known) if classes is None else sorted({str(c) for c in classes})
        missing = [c for c in wanted if c not in known]
        if missing:
            raise ValueError(f"LabelledEpisodeSource: classes not in the rows: {missing[:10]}")
        if n_way is not None and n_way > len(wanted):
            raise ValueError(
                f"LabelledEpisodeSource: n_way={n_way} but only {len(wanted)} classes are given"
            )
        row_ids = rows["row_id"].to_numpy() if "row_id" in rows else np.arange(len(rows))
        if len(set(row_ids.tolist())) != len(row_ids):
            raise ValueError("LabelledEpisodeSource: row_id values must be unique")
        keep = labels.isin(wanted).to_numpy()
        self.texts = dict(zip(row_ids[keep].tolist(), rows["text"].astype(str).to_numpy()[keep]))
        self.rows_by_label = {
            label: np.sort(row_ids[(labels == label).to_numpy()]) for label in wanted
        }
        per_class = k_shot + n_query
        short = {c: len(ids) for c, ids in self.rows_by_label.items() if len(ids) < per_class}
        if short:
            raise ValueError(
                f"LabelledEpisodeSource '{name}': episodes need {per_class} rows per class "
                f"({k_shot} support + {n_query} query); too few in {short}"
            )
        self.classes = wanted
        self.n_way, self.k_shot, self.n_query, self.name = n_way, k_shot, n_query, name
        self.label_names = bool(label_names)

    def sample(self, rng: np.random.Generator) -> TextEpisode:
        n_way, k_shot = self.n_way, self.k_shot
        if self.n_way_range is not None:  # the shape first, from the same generator
            n_way = int(rng.integers(self.n_way_range[0], min(self.n_way_range[1], len(self.classes)) + 1))
        if self.k_shot_range is not None:
            k_shot = int(rng.integers(self.k_shot_range[0], self.k_shot_range[1] + 1))
        episode = sample_episode(self.rows_by_label, n_way, k_shot, self.n_query, rng)
        support_ids = [int(i) for ids in episode.support for i in ids]
        query_ids = [int(i) for ids in episode.query for i in ids]
        support_labels = [label for label, ids in zip(episode.labels, episode.support) for _ in ids]
        query_labels = [label for label, ids in zip(episode.labels, episode.query) for _ in ids]
        support_texts = [self.texts[i] for i in support_ids]
        if self.label_names:  # the class name as one more support text (id -1: not a row)
            named = [(label_text(label), label) for label in episode.labels]
            named = [(text, label) for text, label in named if text]
            support_texts += [text for text, _ in named]
            support_labels += [label for _, label in named]
            support_ids += [-1] * len(named)
        return TextEpisode(
            classes=tuple(episode.labels),
            support_texts=tuple(support_texts),
            support_labels=tuple(support_labels),
            query_texts=tuple(self.texts[i] for i in query_ids),
            query_labels=tuple(query_labels),
            support_ids=tuple(support_ids),
            query_ids=tuple(query_ids),
            source=self.name,
        )


# ---- mixtures ---------------------------------------------------------------------------------


class MixtureSource:
    """Each episode from one of several named sources, chosen with probability ~ its weight.

    `weights` defaults to equal weights; a source with weight 0 is never drawn. The choice and
    the episode come from the same generator, so a mixture is as reproducible as its parts.
    An episode's `source` is the mixture's name for the source that drew it.
    """

    def __init__(
        self, sources: Mapping[str, EpisodeSource], weights: Mapping[str, float] | None = None
    ) -> None:
        if not sources:
            raise ValueError("MixtureSource: sources is empty; give at least one named source")
        names = sorted(sources)
        weights = {name: 1.0 for name in names} if weights is None else dict(weights)
        if set(weights) != set(names):
            raise ValueError(
                f"MixtureSource: weights name {sorted(weights)} but the sources are {names}"
            )
        values = np.asarray([weights[name] for name in names], dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
            raise ValueError(
                f"MixtureSource: weights must be finite, >= 0 and not all 0; got {weights}"
            )
        self.sources, self.names = dict(sources), names
        self.probabilities = values / values.sum()

    def sample(self, rng: np.random.Generator) -> TextEpisode | NerEpisode:
        name = self.names[int(rng.choice(len(self.names), p=self.probabilities))]
        return replace(self.sources[name].sample(rng), source=name)


# ---- SMLMT ------------------------------------------------------------------------------------

_LETTERS = r"[^\W\d_]"
_WORD = re.compile(rf"{_LETTERS}+")


def words_of(text: str) -> set[str]:
    """The distinct words of a text: maximal runs of letters, case-folded."""
    return {word.casefold() for word in _WORD.findall(text)}


def mask_word(text: str, word: str, mask_token: str) -> str:
    """`text` with every whole-word, case-insensitive occurrence of `word` replaced by the mask."""
    pattern = re.compile(rf"(?<!{_LETTERS}){re.escape(word)}(?!{_LETTERS})", re.IGNORECASE)
    return pattern.sub(mask_token, text)


class SmlmtSource:
    """Subset Masked Language Modelling Tasks (Bansal et al. 2020) from unlabelled sentences.

    Candidate words are those (of at least `min_word_length` letters) found in at least
    `max(min_word_count, k_shot + n_query)` distinct sentences. An episode chooses `n_way` of them
    (sorted word list, `rng`), then for each word in sorted order `k_shot + n_query` distinct
    sentences among those containing it (sorted sentence positions, `rng`); in each, every
    occurrence of exactly that word (whole word, any case) becomes `mask_token`. The label is
    the word. The first k sentences are support, the rest query. A sentence may serve two words
    of one episode, masked differently, which makes two different texts.
    """

    def __init__(
        self,
        texts: Sequence[str],
        n_way: int = 5,
        k_shot: int = 5,
        n_query: int = 10,
        min_word_count: int = 30,
        mask_token: str = "[MASK]",
        min_word_length: int = 3,
        name: str = "smlmt",
    ) -> None:
        _check_counts(n_way, k_shot, n_query, "SmlmtSource")
        if not isinstance(mask_token, str) or not mask_token:
            raise ValueError(f"SmlmtSource: mask_token must be a non-empty string, got {mask_token!r}")
        self.texts = [str(t) for t in texts]
        sentences_by_word: dict[str, list[int]] = {}
        for position, text in enumerate(self.texts):
            for word in words_of(text):
                if len(word) >= min_word_length:
                    sentences_by_word.setdefault(word, []).append(position)
        needed = max(int(min_word_count), k_shot + n_query)
        self.sentences_by_word = {
            word: np.asarray(positions, dtype=np.int64)
            for word, positions in sorted(sentences_by_word.items())
            if len(positions) >= needed
        }
        self.words = list(self.sentences_by_word)
        if len(self.words) < n_way:
            raise ValueError(
                f"SmlmtSource: only {len(self.words)} words occur in >= {needed} sentences "
                f"(min_word_count={min_word_count}, k_shot + n_query={k_shot + n_query}); "
                f"n_way={n_way} needs more text or a lower min_word_count"
            )
        self.n_way, self.k_shot, self.n_query = n_way, k_shot, n_query
        self.mask_token, self.name = mask_token, name

    def sample(self, rng: np.random.Generator) -> TextEpisode:
        chosen = [self.words[i] for i in np.sort(rng.choice(len(self.words), self.n_way, replace=False))]
        per_word = self.k_shot + self.n_query
        support, query = [], []
        for word in chosen:
            positions = self.sentences_by_word[word]
            picks = positions[rng.choice(len(positions), size=per_word, replace=False)]
            drawn = [(mask_word(self.texts[p], word, self.mask_token), word, int(p)) for p in picks]
            support += drawn[: self.k_shot]
            query += drawn[self.k_shot:]
        return TextEpisode(
            classes=tuple(chosen),
            support_texts=tuple(t for t, _, _ in support),
            support_labels=tuple(w for _, w, _ in support),
            query_texts=tuple(t for t, _, _ in query),
            query_labels=tuple(w for _, w, _ in query),
            support_ids=tuple(p for _, _, p in support),
            query_ids=tuple(p for _, _, p in query),
            source=self.name,
        )


# ---- NER --------------------------------------------------------------------------------------


def keep_types(tags: Sequence[str], types: Iterable[str]) -> list[str]:
    """IOB2 tags with every entity type outside `types` relabelled `O`."""
    allowed = set(types)
    return [tag if tag == "O" or tag.partition("-")[2] in allowed else "O" for tag in tags]


class NerEpisodeSource:
    """NER episodes: greedy K-mention support sets and disjoint query sets over tagged sentences.

    `sentences` is a table with columns tokens, tags (row_id if present) or a sequence of
    (tokens, tags) pairs. An episode takes `n_way` of `entity_types` (all when None), visits the
    sentences in `rng` order and adds a sentence to the support set when it holds a mention of a
    type still under `k_shot` mentions, until every type has at least `k_shot` (Yang and Katiyar
    2020, as PROTOCOL.md section 4 draws k-shot sets); the visit then continues over the other
    sentences for the query set, with a quota of `n_query` mentions per type. Types outside the
    episode, and the `held_out_types` of a tag-set-extension fold, are relabelled `O` in both
    sets, so a held-out type is never seen during meta-training.
    """

    def __init__(
        self,
        sentences: pd.DataFrame | Sequence[tuple[Sequence[str], Sequence[str]]],
        entity_types: Iterable[str] | None = None,
        k_shot: int = 5,
        n_query: int = 5,
        n_way: int | None = None,
        held_out_types: Iterable[str] = (),
        name: str = "ner",
    ) -> None:
        _check_counts(n_way, k_shot, n_query, "NerEpisodeSource")
        if isinstance(sentences, pd.DataFrame):
            require_columns(sentences, ["tokens", "tags"], "NerEpisodeSource")
            ordered = sentences.sort_values("row_id", kind="stable") if "row_id" in sentences else sentences
            ids = ordered["row_id"].to_numpy() if "row_id" in ordered else np.arange(len(ordered))
            pairs = list(zip(ordered["tokens"], ordered["tags"]))
        else:
            pairs, ids = list(sentences), np.arange(len(sentences))
        self.ids = [int(i) for i in ids]
        self.tokens = [tuple(str(t) for t in tokens) for tokens, _ in pairs]
        self.tags = [tuple(str(t) for t in tags) for _, tags in pairs]
        for row_id, tokens, tags in zip(self.ids, self.tokens, self.tags):
            if len(tokens) != len(tags):
                raise ValueError(
                    f"NerEpisodeSource: sentence {row_id} has {len(tokens)} tokens and {len(tags)} tags"
                )
        held_out = sorted(set(held_out_types))
        self.mentions = [entity_mentions(tags) for tags in self.tags]
        totals = sum(self.mentions, Counter())
        types = sorted(t for t in totals if t not in held_out) if entity_types is None else sorted(set(entity_types))
        clash = sorted(set(types) & set(held_out))
        if clash:
            raise ValueError(f"NerEpisodeSource: types {clash} are both episode types and held out")
        short = {t: totals[t] for t in types if totals[t] < k_shot + n_query}
        if short:
            raise ValueError(
                f"NerEpisodeSource: each type needs at least k_shot + n_query = {k_shot + n_query} "
                f"mentions; too few: {short}"
            )
        if n_way is not None and n_way > len(types):
            raise ValueError(f"NerEpisodeSource: n_way={n_way} but only {len(types)} types {types}")
        self.entity_types, self.held_out_types = types, held_out
        self.n_way, self.k_shot, self.n_query, self.name = n_way, k_shot, n_query, name

    def sample(self, rng: np.random.Generator) -> NerEpisode:
        types = self.entity_types
        if self.n_way is not None:
            types = [types[i] for i in np.sort(rng.choice(len(types), self.n_way, replace=False))]
        order = rng.permutation(len(self.ids))
        support, cursor = self._greedy(order, 0, types, self.k_shot)
        query, _ = self._greedy(order, cursor, types, self.n_query) if self.n_query else ([], cursor)
        reached = sum((self.mentions[p] for p in query), Counter())
        short = [t for t in types if self.n_query and reached[t] < self.n_query]
        if short:
            raise ValueError(
                f"NerEpisodeSource: the sentences left after the support set hold fewer than "
                f"n_query={self.n_query} mentions of {short}"
            )
        return NerEpisode(
            entity_types=tuple(types),
            support_tokens=tuple(self.tokens[p] for p in support),
            support_tags=tuple(tuple(keep_types(self.tags[p], types)) for p in support),
            query_tokens=tuple(self.tokens[p] for p in query),
            query_tags=tuple(tuple(keep_types(self.tags[p], types)) for p in query),
            support_ids=tuple(self.ids[p] for p in support),
            query_ids=tuple(self.ids[p] for p in query),
            source=self.name,
        )

    def _greedy(self, order: np.ndarray, start: int, types: Sequence[str], quota: int) -> tuple[list[int], int]:
        """Positions added from `order[start:]` until every type has `quota` mentions."""
        reached: Counter[str] = Counter()
        chosen: list[int] = []
        cursor = start
        while cursor < len(order) and any(reached[t] < quota for t in types):
            position = int(order[cursor])
            cursor += 1
            sentence = self.mentions[position]
            if any(sentence[t] and reached[t] < quota for t in types):
                chosen.append(position)
                for t in types:
                    reached[t] += sentence[t]
        return chosen, cursor


# ---- building blocks of the sources ------------------------------------------------------------


def classes_with_enough_rows(rows: pd.DataFrame, per_class: int) -> tuple[pd.DataFrame, list[str]]:
    """The rows (labels as text) of the classes with at least `per_class` rows, and those classes
    sorted: an episode draws k + n distinct rows of each of its classes."""
    labels = rows["label"].astype(str)
    counts = labels.value_counts()
    keep = sorted(counts[counts >= per_class].index)
    return rows[labels.isin(keep)].assign(label=lambda table: table["label"].astype(str)), keep


def pool_texts(pool: pd.DataFrame, exclude: Iterable[str], max_texts: int | None, seed: int) -> list[str]:
    """The unlabelled pool's texts without the sources `exclude`, at most `max_texts` of them (a
    sample drawn with `seed`, kept in pool order) for an `SmlmtSource`."""
    require_columns(pool, ["text", "source"], "pool_texts")
    pool = pool[~pool["source"].isin(list(exclude))]
    if max_texts and len(pool) > max_texts:
        keep = np.random.default_rng(seed).choice(len(pool), max_texts, replace=False)
        pool = pool.iloc[np.sort(keep)]
    return pool["text"].tolist()


# ---- Banking77 class splits -------------------------------------------------------------------


def banking77_class_split(class_split_files: Mapping[str, bytes], split: str | int) -> dict[str, list[str]]:
    """The train / valid / test class lists of one class split (PROTOCOL.md section 3).

    `class_split_files` is the raw folder as the catalog loads it (`"01/train.txt"` -> bytes);
    `split` is `"01"` or `1`. The three lists must be disjoint, or the split would leak.
    """
    name = f"{int(split):02d}" if isinstance(split, (int, np.integer)) or str(split).isdigit() else str(split)
    available = sorted({key.split("/")[0] for key in class_split_files if "/" in key})
    lists = {}
    for part in CLASS_SPLIT_PARTS:
        key = f"{name}/{part}.txt"
        if key not in class_split_files:
            raise ValueError(
                f"class split '{name}' has no {part}.txt; available splits: {available}"
            )
        content = class_split_files[key]
        text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
        lists[part] = parse_class_list(text)
    for first, second in (("train", "valid"), ("train", "test"), ("valid", "test")):
        shared = sorted(set(lists[first]) & set(lists[second]))
        if shared:
            raise ValueError(f"class split '{name}': {first} and {second} share classes {shared[:5]}")
    return lists


__all__ = [
    "EpisodeSource", "LabelledEpisodeSource", "MixtureSource", "NerEpisode", "NerEpisodeSource",
    "SmlmtSource", "TextEpisode", "banking77_class_split", "classes_with_enough_rows", "keep_types", "label_text",
    "mask_word", "pool_texts", "words_of",
]
