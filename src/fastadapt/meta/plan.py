"""`MetaTrainingPlan`: the validated `meta_training:` block (conf/base/parameters_meta_training.yml).

Built once with `MetaTrainingPlan.from_params(params, where="meta_training")` (the project's one
way, `fastadapt.config.Settings`): unknown keys and wrong values raise `ConfigError` naming
`meta_training.<key>`, and the field defaults below are the only defaults. Nested blocks become
settings objects (`evaluation`, `curves`, each episode source of `sources`); `meta` merged with
`algorithm_settings.<algorithm>` gives each algorithm's `MetaConfig`, and every algorithm on
every class split is one `RunSpec`.

    plan = MetaTrainingPlan.from_params(parameters["meta_training"], where="meta_training")
    plan.runs[0].name, plan.runs[0].config.k_shot   # "protonet_s01", 5
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from fastadapt.config import Checks, ConfigError, Settings, check_keys
from fastadapt.meta.config import ALGORITHMS, MetaConfig
from fastadapt.models.checkpoints import run_checkpoint_dir

if TYPE_CHECKING:  # pragma: no cover
    from fastadapt.adaptation.transfer import SourceTaggerSettings
    from fastadapt.meta.broad import BroadPlan

CURVE_ARMS = ("random_init", "pretrained", "meta_trained", "tfidf")
# Strategies of a frozen encoder: its features are computed once for every fit.
FROZEN_STRATEGIES = ("prototype", "finetune_head")
FROZEN_RULE = f"allowed: {list(FROZEN_STRATEGIES)} (frozen encoders: their features are computed once)"


def split_name(split: Any, where: str = "meta_training.class_splits") -> str:
    """A class split's folder name: `"01"` for 1, "01" or "1"."""
    text = str(split)
    if not text.isdigit():
        raise ConfigError(f"{where} names split {split!r}; allowed: split numbers such as \"01\" or 1")
    return f"{int(text):02d}"


def integer_list(check: Checks, key: str, low: int) -> None:
    """`<key>` must be null or a non-empty list of integers >= `low`; stored as a list."""
    check.integers(key, low, optional=True)
    value = getattr(check.settings, key)
    if value is not None:
        setattr(check.settings, key, [int(v) for v in value])


@dataclass
class SmlmtSettings(Settings):
    """How SMLMT episodes are drawn from the unlabelled pool (`tasks.meta_episodes.SmlmtSource`)."""

    min_word_count: int = 30
    max_texts: int | None = None  # a fixed random sample of the pool (seed below)
    seed: int = 0

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        check.integer("min_word_count", 1)
        check.integer("max_texts", 1, optional=True)
        check.integer("seed", 0)


@dataclass
class ClassSplitSpec(Settings):
    """Episodes from the train classes of the run's Banking77 class split (train + validation rows)."""

    kind: str = "class_split"


@dataclass
class DomainSpec(Settings):
    """Episodes from a domain's splits table."""

    kind: str = "domain"
    domain: str | None = None
    splits: list[str] = field(default_factory=lambda: ["train", "validation"])
    n_way: int | None = None  # default: meta.n_way

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        if not isinstance(self.domain, str):
            check.fail("domain", "allowed: the name of a domain")
        check.integer("n_way", 2, optional=True)


@dataclass
class SmlmtSpec(SmlmtSettings):
    """SMLMT episodes from the unlabelled pool, without the texts of `exclude_sources`."""

    kind: str = "smlmt"
    exclude_sources: list[str] = field(default_factory=lambda: ["customer_intent"])


SOURCES = {"class_split": ClassSplitSpec, "domain": DomainSpec, "smlmt": SmlmtSpec}
SOURCE_KINDS = tuple(SOURCES)
SourceSpec = ClassSplitSpec | DomainSpec | SmlmtSpec


def source_settings(params: Any, where: str) -> SourceSpec:
    """The settings object of one `sources.<name>` entry, by its `kind`."""
    keys = sorted({f.name for spec in SOURCES.values() for f in fields(spec)})
    kind = check_keys(params, keys, where).get("kind")
    if kind not in SOURCES:
        raise ConfigError(f"{where}.kind is {kind!r}; allowed: {list(SOURCE_KINDS)}")
    return SOURCES[kind].from_params(params, where)


@dataclass
class EvaluationSettings(Settings):
    """How the meta-learned models meet the fixed test episodes."""

    strategy: str = "meta"  # a fastadapt.adapt strategy, not tfidf (always a baseline)
    max_episodes: int | None = None  # the first N episodes per setting and split
    settings: list[str] | None = None  # episode settings to score (null: all)
    batch_size: int = 64

    def validate(self, where: str) -> None:
        from fastadapt.adapt import STRATEGIES, check_strategy

        check = Checks(self, where)
        check_strategy(self.strategy, f"{where}.strategy")
        if self.strategy == "tfidf":
            raise ConfigError(f"{where}.strategy is 'tfidf'; the meta-learned model is adapted with one of "
                              f"{[s for s in STRATEGIES if s != 'tfidf']} (TF-IDF is always a baseline)")
        check.integer("max_episodes", 1, optional=True)
        check.integer("batch_size", 1)


@dataclass
class RandomInitArm(Settings):
    """The random-weights arm: this architecture, re-initialised unless it is tiny-bert."""

    backbone: str = "tiny-bert"
    strategy: str = "prototype"

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        check.text("backbone")
        if self.strategy not in FROZEN_STRATEGIES:
            check.fail("strategy", FROZEN_RULE)


@dataclass
class PretrainedArm(Settings):
    """The pretrained-only arm: this backbone, frozen, no meta-training."""

    backbone: str = "minilm-l6"
    strategy: str | None = None  # default: curves.strategy

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        check.text("backbone")
        if self.strategy is not None and self.strategy not in FROZEN_STRATEGIES:
            check.fail("strategy", FROZEN_RULE)


@dataclass
class CurveSettings(Settings):
    """k-shot learning curves on each text domain's `kshot_sets`, one per arm."""

    domains: list[str] | None = None  # null: every text-classification domain
    ks: list[int] | None = None  # null: every k of the k-shot table
    seeds: list[int] | None = None  # null: every seed
    max_test_rows: int | None = None  # a fixed random sample of the test split (null: all of it)
    arms: list[str] = field(default_factory=lambda: list(CURVE_ARMS))
    random_init: RandomInitArm = field(default_factory=RandomInitArm)
    pretrained: PretrainedArm = field(default_factory=PretrainedArm)
    strategy: str = "prototype"  # for pretrained and meta_trained
    metric: str = "cosine"  # prototype metric of the frozen backbones
    batch_size: int = 64
    seed: int = 0

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        for arm in self.arms:
            if arm not in CURVE_ARMS:
                raise ConfigError(f"{where}.arms names {arm!r}; allowed: {list(CURVE_ARMS)}")
        integer_list(check, "ks", 1)
        integer_list(check, "seeds", 0)
        check.integer("max_test_rows", 1, optional=True)
        if isinstance(self.random_init, Mapping) or self.random_init is None:
            self.random_init = RandomInitArm.from_params(self.random_init, f"{where}.random_init")
        if isinstance(self.pretrained, Mapping) or self.pretrained is None:
            self.pretrained = PretrainedArm.from_params(self.pretrained, f"{where}.pretrained")
        if self.strategy not in FROZEN_STRATEGIES:
            check.fail("strategy", FROZEN_RULE)
        check.choice("metric", ("cosine", "euclidean"))
        check.integer("batch_size", 1)
        check.integer("seed", 0)

    @property
    def pretrained_strategy(self) -> str:
        return self.pretrained.strategy or self.strategy


@dataclass(frozen=True)
class RunSpec:
    """One meta-training run: an algorithm on one class split."""

    name: str  # <algorithm>_s<split>, e.g. protonet_s01
    algorithm: str
    split: str  # "01"
    config: MetaConfig


@dataclass
class MetaTrainingPlan(Settings):
    """The validated `meta_training:` block (see the module docstring)."""

    REQUIRED_IN: ClassVar[str | None] = "conf/base/parameters_meta_training.yml"

    backbone: str = "minilm-l6"  # minilm-l6 | tiny-bert | pretrained | a model directory
    class_splits: list[str] = field(default_factory=lambda: ["01"])
    algorithms: list[str] = field(default_factory=lambda: ["protonet"])
    meta: dict[str, Any] = field(default_factory=dict)  # MetaConfig settings shared by every algorithm
    algorithm_settings: dict[str, Any] = field(default_factory=dict)  # merged over `meta` per algorithm
    sources: dict[str, Any] = field(default_factory=dict)  # name -> its episode source settings
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    curves: CurveSettings = field(default_factory=CurveSettings)
    broad: dict[str, Any] | None = None  # fastadapt.meta.broad.BroadPlan (needs the text domains)
    ner_source: dict[str, Any] | None = None  # fastadapt.adaptation.transfer.SourceTaggerSettings

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, where: str = "meta_training") -> MetaTrainingPlan:
        return super().from_params(params, where)

    def validate(self, where: str) -> None:
        check = Checks(self, where)
        if not isinstance(self.backbone, str) or not self.backbone:
            check.fail("backbone", "allowed: minilm-l6, tiny-bert, pretrained or a model directory")
        splits = self.class_splits or ["01"]
        if not isinstance(splits, (list, tuple)):
            check.fail("class_splits", "allowed: a list of split numbers, e.g. [\"01\"]")
        self.class_splits = [split_name(s, f"{where}.class_splits") for s in splits]
        if not isinstance(self.algorithms or [], (list, tuple)):
            check.fail("algorithms", f"allowed: a list of algorithms among {list(ALGORITHMS)}")
        self.algorithms = list(self.algorithms or ["protonet"])
        for name in self.algorithms:
            if name not in ALGORITHMS:
                raise ConfigError(f"{where}.algorithms names {name!r}; allowed: {list(ALGORITHMS)}")
        self.meta = check_keys(self.meta, [f.name for f in fields(MetaConfig)], f"{where}.meta")
        self.algorithm_settings = check_keys(self.algorithm_settings, ALGORITHMS, f"{where}.algorithm_settings")
        self._configs = {name: MetaConfig.from_params(self._merged(name, where), where=f"{where}.meta")
                         for name in self.algorithms}
        if not isinstance(self.sources or {}, Mapping):
            check.fail("sources", "allowed: a mapping of source name to its settings")
        self.sources = {name: spec if isinstance(spec, Settings) else source_settings(spec, f"{where}.sources.{name}")
                        for name, spec in (self.sources or {}).items()}
        for name in self.source_weights:
            if name not in self.sources and name != "banking77":
                raise ConfigError(f"{where}.meta.sources names '{name}', which {where}.sources does not define; "
                                  f"defined: {sorted(self.sources)}")
        if not isinstance(self.evaluation, EvaluationSettings):
            self.evaluation = EvaluationSettings.from_params(self.evaluation, f"{where}.evaluation")
        if not isinstance(self.curves, CurveSettings):
            self.curves = CurveSettings.from_params(self.curves, f"{where}.curves")
        for key in ("broad", "ner_source"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), Mapping):
                check.fail(key, "allowed: a mapping of settings or null")

    def _merged(self, algorithm: str, where: str) -> dict[str, Any]:
        own = check_keys(self.algorithm_settings.get(algorithm), [f.name for f in fields(MetaConfig)],
                         f"{where}.algorithm_settings.{algorithm}")
        return {**self.meta, **own, "algorithm": algorithm}

    @property
    def meta_config(self) -> MetaConfig:
        """The shared settings: the first algorithm's merged config."""
        return self._configs[self.algorithms[0]]

    @property
    def runs(self) -> tuple[RunSpec, ...]:
        return tuple(RunSpec(f"{a}_s{s}", a, s, self._configs[a]) for a in self.algorithms for s in self.class_splits)

    def run(self, name: str) -> RunSpec:
        return next(run for run in self.runs if run.name == name)

    @property
    def splits(self) -> list[str]:
        return sorted(set(self.class_splits))

    @property
    def source_weights(self) -> dict[str, float]:
        """Each episode source with weight > 0 (meta.sources; default banking77 alone)."""
        weights = self.meta_config.sources or {"banking77": 1.0}
        return {name: float(weight) for name, weight in weights.items() if weight > 0}

    def source(self, name: str) -> SourceSpec:
        """A weighted source's settings (banking77: the class split unless `sources` says otherwise)."""
        return self.sources.get(name) or ClassSplitSpec()

    @property
    def domains_needed(self) -> list[str]:
        """Domains whose splits a mixture source reads."""
        return sorted({spec.domain for name in self.source_weights
                       if isinstance(spec := self.source(name), DomainSpec)})

    @property
    def uses_pool(self) -> bool:
        return any(isinstance(self.source(name), SmlmtSpec) for name in self.source_weights)

    def checkpoint_dir(self, run: RunSpec) -> str | None:
        """`<meta.checkpoint_dir>/<run>-<fingerprint>` (`models.checkpoints`): a run resumes only its own."""
        sources = {name: {**asdict(self.source(name)), "weight": weight} for name, weight in self.source_weights.items()}
        return run_checkpoint_dir(run.config.checkpoint_dir, run.name, {
            "run": run.name, "backbone": self.backbone, "config": run.config, "sources": sources})

    def use_threads(self) -> MetaTrainingPlan:
        """Set torch's thread count from `meta.num_threads` (CPU runs); returns the plan."""
        config = self.meta_config
        if config.num_threads and config.device in ("auto", "cpu"):
            import torch

            torch.set_num_threads(config.num_threads)
        return self

    def broad_plan(self, text_domains: Sequence[str]) -> BroadPlan | None:
        """The validated `broad:` block for this project's text domains (None: no broad runs)."""
        from fastadapt.meta.broad import BroadPlan

        return BroadPlan.from_params(self.broad, text_domains)

    @property
    def ner_source_settings(self) -> SourceTaggerSettings | None:
        """The validated `ner_source:` block (None: no NER source tagger)."""
        if not self.ner_source:
            return None
        from fastadapt.adaptation.transfer import SourceTaggerSettings

        return SourceTaggerSettings.from_params(self.ner_source)


__all__ = ["CURVE_ARMS", "FROZEN_STRATEGIES", "SOURCE_KINDS", "ClassSplitSpec", "CurveSettings", "DomainSpec",
           "EvaluationSettings", "MetaTrainingPlan", "RunSpec", "SmlmtSettings", "SmlmtSpec", "split_name"]
