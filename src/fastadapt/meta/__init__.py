"""Meta-learning: an encoder that learns how to learn from few labelled examples.

Episodes come from `fastadapt.tasks.meta_episodes` (labelled classes, mixtures, SMLMT, NER);
a `MetaLearner` (encoder + pooling + head) is trained by one small algorithm object with one
interface (`meta_train_step`, `adapt`, `evaluate`):

- `ProtoNet` (Snell et al. 2017), `MAML` / `FOMAML` with optional Meta-SGD (Finn et al. 2017;
  Li et al. 2017), `Reptile` (Nichol et al. 2018), `ANIL` (Raghu et al. 2020);
- `MetaConfig` holds the settings, `MetaTrainingPlan` (`meta.plan`) the whole `meta_training:`
  block, `build_learner` / `build_algorithm` make the objects,
  `meta_train` runs the loop (meta-validation, early stopping, checkpoints and resume),
  `evaluate_episodes` / `episode_summary` run the PROTOCOL.md meta-test.
"""

from fastadapt.meta.algorithm import MetaAlgorithm, inner_loop
from fastadapt.meta.anil import ANIL
from fastadapt.meta.config import ALGORITHMS, MetaConfig, build_algorithm, build_learner
from fastadapt.meta.evaluate import episode_summary, evaluate_episodes
from fastadapt.meta.learner import (
    AdaptedClassifier,
    EpisodeBatch,
    MetaLearner,
    episode_loss,
)
from fastadapt.meta.maml import FOMAML, MAML
from fastadapt.meta.protonet import ProtoNet
from fastadapt.meta.reptile import Reptile
from fastadapt.meta.train import MetaTrainingResult, meta_train

__all__ = [
    "ALGORITHMS",
    "ANIL",
    "FOMAML",
    "MAML",
    "AdaptedClassifier",
    "EpisodeBatch",
    "MetaAlgorithm",
    "MetaConfig",
    "MetaLearner",
    "MetaTrainingResult",
    "ProtoNet",
    "Reptile",
    "build_algorithm",
    "build_learner",
    "episode_loss",
    "episode_summary",
    "evaluate_episodes",
    "inner_loop",
    "meta_train",
]
