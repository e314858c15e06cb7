"""Classical baselines every adapted model is measured against.

They train in seconds to minutes on CPU and give the floor a few-shot method must beat: a TF-IDF
logistic regression for text classification and a feature-based CRF for NER. Both follow the
scikit-learn convention (the constructor only stores parameters; `fit` checks them) and expose
the `TextClassifier` / `SequenceTagger` protocols of `fastadapt.models.predictor`.
"""

from __future__ import annotations

import numbers
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sklearn_crfsuite
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from fastadapt.config import ConfigError, check_keys
from fastadapt.models.predictor import check_token_lists

ANALYZERS = ("word", "word+char")
# Character n-grams inside word boundaries: robust to inflection, typos and unseen words,
# which matters most when only a few examples per class are seen.
CHAR_NGRAM_RANGE = (2, 5)


def _check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; got {value!r}")


def _check_number(name: str, value: object, *, integer: bool, low: float, strict: bool) -> None:
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    ok = ok and (value > low if strict else value >= low)  # type: ignore[operator]
    if not ok:
        what = "an integer" if integer else "a number"
        bound = f"> {low}" if strict else f">= {low}"
        raise ValueError(f"{name} must be {what} {bound}; got {value!r}")


def _check_texts(name: str, texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise ValueError(f"{name} must be a sequence of strings, not a single string")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{i}] must be a string; got {type(text).__name__} {text!r}")
    return texts


class _Baseline(BaseEstimator):
    """A baseline estimator built from its parameter block: unknown keys and bad values raise
    `ConfigError` naming `<where>.<key>` before any fit (the constructor itself, as scikit-learn
    wants, only stores its arguments; `fit` checks them again)."""

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str) -> Any:
        values = check_keys(params, cls._get_param_names(), where)
        if "ngram_range" in values and isinstance(values["ngram_range"], list):
            values["ngram_range"] = tuple(values["ngram_range"])  # YAML has no tuples
        model = cls(**values)
        try:
            model._check_params()
        except ValueError as error:
            raise ConfigError(f"{where}.{error}") from None
        return model

    def _check_params(self) -> None:
        raise NotImplementedError


class TfidfLogisticRegression(_Baseline):
    """TF-IDF features + multinomial logistic regression, the standard text-classification floor.

    Parameters
    ----------
    analyzer: "word" (word n-grams) or "word+char" (word n-grams joined with char_wb 2-5-grams,
        which help on short texts, rare words and k-shot training sets).
    ngram_range, min_df, sublinear_tf: passed to the word TfidfVectorizer (min_df also to the
        char one). min_df=1 keeps every term, so k-shot sets with one example per class work.
    C, max_iter, class_weight: passed to LogisticRegression (lbfgs, deterministic).
    seed: LogisticRegression random_state, for a uniform learner interface; lbfgs uses no
        randomness, so fits are reproducible whatever its value.
    """

    def __init__(
        self,
        *,
        analyzer: str = "word",
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int | float = 1,
        sublinear_tf: bool = True,
        C: float = 10.0,
        max_iter: int = 2000,
        class_weight: str | dict[str, float] | None = None,
        seed: int = 0,
    ) -> None:
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.seed = seed

    def _check_params(self) -> None:
        _check_choice("analyzer", self.analyzer, ANALYZERS)
        low_high = tuple(self.ngram_range) if isinstance(self.ngram_range, (tuple, list)) else ()
        if not (
            len(low_high) == 2
            and all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in low_high)
            and 1 <= low_high[0] <= low_high[1]
        ):
            raise ValueError(
                f"ngram_range must be a pair (low, high) of integers with 1 <= low <= high; "
                f"got {self.ngram_range!r}"
            )
        min_df_ok = (
            isinstance(self.min_df, numbers.Integral)
            and not isinstance(self.min_df, bool)
            and self.min_df >= 1
        ) or (isinstance(self.min_df, float) and 0.0 < self.min_df <= 1.0)
        if not min_df_ok:
            raise ValueError(
                f"min_df must be an integer >= 1 (a document count) or a float in (0.0, 1.0] "
                f"(a fraction of documents); got {self.min_df!r}"
            )
        _check_choice("sublinear_tf", self.sublinear_tf, [True, False])
        _check_number("C", self.C, integer=False, low=0.0, strict=True)
        _check_number("max_iter", self.max_iter, integer=True, low=1, strict=False)
        if not (
            self.class_weight is None
            or self.class_weight == "balanced"
            or isinstance(self.class_weight, dict)
        ):
            raise ValueError(
                f"class_weight must be None, 'balanced' or a dict {{class: weight}}; "
                f"got {self.class_weight!r}"
            )
        _check_number("seed", self.seed, integer=True, low=0, strict=False)

    def _features(self) -> TfidfVectorizer | FeatureUnion:
        word = TfidfVectorizer(
            analyzer="word",
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            sublinear_tf=self.sublinear_tf,
            lowercase=True,
        )
        if self.analyzer == "word":
            return word
        char = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=CHAR_NGRAM_RANGE,
            min_df=self.min_df,
            sublinear_tf=self.sublinear_tf,
            lowercase=True,
        )
        return FeatureUnion([("word", word), ("char", char)])

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TfidfLogisticRegression:
        """Fit on texts and their labels (labels are compared as strings)."""
        self._check_params()
        texts = _check_texts("texts", texts)
        labels = [str(label) for label in labels]
        if len(texts) != len(labels):
            raise ValueError(
                f"texts and labels must have the same length; got {len(texts)} and {len(labels)}"
            )
        classes = sorted(set(labels))
        if len(classes) < 2:
            found = f"only {classes[0]!r}" if classes else "no labels at all"
            raise ValueError(f"a classifier needs at least two classes in labels; found {found}")
        pipeline = Pipeline(
            [
                ("features", self._features()),
                (
                    "classifier",
                    LogisticRegression(
                        C=self.C,
                        max_iter=self.max_iter,
                        class_weight=self.class_weight,
                        solver="lbfgs",
                        random_state=self.seed,
                    ),
                ),
            ]
        )
        with warnings.catch_warnings():
            # k-shot sets (one example per class) trip scikit-learn's "y could be a regression
            # target" heuristic; the labels here are class names, so the warning is noise.
            warnings.filterwarnings(
                "ignore", message="The number of unique classes is greater than 50%"
            )
            pipeline.fit(texts, np.asarray(labels, dtype=object))
        self.pipeline_ = pipeline
        self.classes_: list[str] = [str(c) for c in pipeline.classes_]
        return self

    def _fitted(self) -> Pipeline:
        if not hasattr(self, "pipeline_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet; call fit(texts, labels) first"
            )
        return self.pipeline_

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (n_texts, n_classes), columns in `classes_` order."""
        pipeline = self._fitted()
        texts = _check_texts("texts", texts)
        if not texts:
            return np.empty((0, len(self.classes_)), dtype=np.float64)
        return pipeline.predict_proba(texts)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """The most probable class per text (object array of str)."""
        proba = self.predict_proba(texts)
        return np.asarray(self.classes_, dtype=object)[proba.argmax(axis=1)]


IOB2_TAG = re.compile(r"^(O|[BI]-.+)$")


def repair_iob2(tags: Sequence[str]) -> list[str]:
    """Turn every I-X that does not continue a B-X/I-X into B-X, so the tags are valid IOB2.

    A first-order CRF only scores tag transitions; nothing forbids O -> I-X or I-Y -> I-X, and
    it emits them now and then, mostly when trained on few sentences. Evaluation and span
    extraction downstream assume valid IOB2, where such a tag has no meaning; reading it as the
    start of a new entity is what conlleval does and keeps the span the model found.
    """
    repaired: list[str] = []
    previous_type: str | None = None  # entity type of the previous tag, None after O
    for tag in tags:
        if tag.startswith("I-") and tag[2:] != previous_type:
            tag = "B-" + tag[2:]
        repaired.append(tag)
        previous_type = tag[2:] if tag[:2] in ("B-", "I-") else None
    return repaired


def _shape(word: str) -> str:
    """Word shape with runs collapsed: 'McDonald's' -> 'XxXx'x', '1996-12-06' -> 'd-d-d'."""
    shape = re.sub(r"[A-Z]+", "X", word)
    shape = re.sub(r"[a-z]+", "x", shape)
    return re.sub(r"[0-9]+", "d", shape)


def _word_features(word: str, prefix: str) -> dict[str, str | bool]:
    return {
        f"{prefix}lower": word.lower(),
        f"{prefix}shape": _shape(word),
        f"{prefix}istitle": word.istitle(),
        f"{prefix}isupper": word.isupper(),
    }


def token_features(tokens: Sequence[str]) -> list[dict[str, str | bool]]:
    """CRFsuite feature dicts, one per token: the word itself, its affixes and shape, and the
    lower-cased words and shapes of its neighbours up to two tokens away (BOS/EOS at the edges).
    No POS tags, so the tagger needs nothing but tokens."""
    features = []
    n = len(tokens)
    for i, word in enumerate(tokens):
        f: dict[str, str | bool] = {
            "bias": True,
            "word": word,
            "lower": word.lower(),
            "prefix3": word[:3].lower(),
            "suffix2": word[-2:].lower(),
            "suffix3": word[-3:].lower(),
            "suffix4": word[-4:].lower(),
            "shape": _shape(word),
            "istitle": word.istitle(),
            "isupper": word.isupper(),
            "isdigit": word.isdigit(),
            "hasdigit": any(ch.isdigit() for ch in word),
            "hashyphen": "-" in word,
        }
        for offset in (-2, -1, 1, 2):
            j = i + offset
            if 0 <= j < n:
                f.update(_word_features(tokens[j], f"{offset:+d}:"))
        if i == 0:
            f["BOS"] = True
        if i == n - 1:
            f["EOS"] = True
        if i > 0:
            f["-1:lower|lower"] = f"{tokens[i - 1].lower()}|{word.lower()}"
        if i < n - 1:
            f["lower|+1:lower"] = f"{word.lower()}|{tokens[i + 1].lower()}"
        features.append(f)
    return features


class CrfTagger(_Baseline):
    """Linear-chain CRF (CRFsuite, L-BFGS with elastic net) over hand-made token features.

    The usual feature-based NER floor; predictions are repaired to valid IOB2.

    Parameters
    ----------
    c1, c2: L1 and L2 regularisation coefficients.
    max_iterations: L-BFGS iterations; the fit time grows linearly with it.
    seed: accepted for a uniform learner interface; CRFsuite's L-BFGS training is deterministic,
        so it does not change the result.
    """

    def __init__(
        self, *, c1: float = 0.1, c2: float = 0.1, max_iterations: int = 100, seed: int = 0
    ) -> None:
        self.c1 = c1
        self.c2 = c2
        self.max_iterations = max_iterations
        self.seed = seed

    def _check_params(self) -> None:
        _check_number("c1", self.c1, integer=False, low=0.0, strict=False)
        _check_number("c2", self.c2, integer=False, low=0.0, strict=False)
        _check_number("max_iterations", self.max_iterations, integer=True, low=1, strict=False)
        _check_number("seed", self.seed, integer=True, low=0, strict=False)

    def fit(self, token_lists: Sequence[list[str]], tag_lists: Sequence[list[str]]) -> CrfTagger:
        """Fit on tokenised sentences and their IOB2 tags ('O', 'B-<type>', 'I-<type>')."""
        self._check_params()
        token_lists = check_token_lists(token_lists)
        tag_lists = [list(tags) for tags in tag_lists]
        if len(token_lists) != len(tag_lists):
            raise ValueError(
                f"token_lists and tag_lists must have the same length; "
                f"got {len(token_lists)} and {len(tag_lists)}"
            )
        if not token_lists:
            raise ValueError("token_lists is empty; a tagger needs at least one sentence")
        for i, (tokens, tags) in enumerate(zip(token_lists, tag_lists)):
            if len(tokens) != len(tags):
                raise ValueError(
                    f"token_lists[{i}] has {len(tokens)} tokens but tag_lists[{i}] has "
                    f"{len(tags)} tags"
                )
            for tag in tags:
                if not (isinstance(tag, str) and IOB2_TAG.match(tag)):
                    raise ValueError(
                        f"tag_lists[{i}] must hold IOB2 tags ('O', 'B-<type>' or 'I-<type>'); "
                        f"got {tag!r}"
                    )
        crf = sklearn_crfsuite.CRF(
            algorithm="lbfgs",
            c1=self.c1,
            c2=self.c2,
            max_iterations=self.max_iterations,
            all_possible_transitions=True,
        )
        crf.fit([token_features(tokens) for tokens in token_lists], tag_lists)
        self.crf_ = crf
        self.classes_: list[str] = list(crf.classes_)
        return self

    def predict(self, token_lists: Sequence[list[str]]) -> list[list[str]]:
        """One valid IOB2 tag list per token list."""
        if not hasattr(self, "crf_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet; call fit(token_lists, tag_lists) first"
            )
        token_lists = check_token_lists(token_lists)
        return [
            repair_iob2(self.crf_.predict_single(token_features(tokens))) if tokens else []
            for tokens in token_lists
        ]
