"""MetaConfig: defaults, validation messages naming the parameter, combinations."""

import pytest

from fastadapt.config import ConfigError
from fastadapt.meta import MetaConfig


def test_defaults_are_valid_and_resolve_inner_params():
    config = MetaConfig.from_params({})
    assert config.algorithm == "protonet" and config.head == "prototype" and config.inner_params == "all"
    anil = MetaConfig.from_params({"algorithm": "anil"})
    assert anil.inner_params == "head" and anil.head == "linear"


@pytest.mark.parametrize("params, message", [
    ({"algorithm": "snail"}, r"meta.algorithm is 'snail'; allowed: \['protonet', 'maml'"),
    ({"inner_lr": 0}, r"meta.inner_lr is 0; allowed: a number > 0"),
    ({"inner_steps": 1.5}, r"meta.inner_steps is 1.5; allowed: an integer >= 1"),
    ({"meta_batch_size": 0}, r"meta.meta_batch_size"),
    ({"inner_params": "some"}, r"meta.inner_params is 'some'; allowed: \['all', 'head', 'lora'\]"),
    ({"meta_sgd": "yes"}, r"meta.meta_sgd is 'yes'; allowed: true or false"),
    ({"n_way": 1}, r"meta.n_way"),
    ({"max_seconds": -1}, r"meta.max_seconds"),
    ({"early_stop_patience": 0}, r"meta.early_stop_patience"),
    ({"device": "tpu"}, r"meta.device"),
    ({"sources": {"customer_intent": -1}}, r"meta.sources.customer_intent is -1"),
    ({"sources": {"a": 0, "b": 0}}, r"meta.sources"),
    ({"algorithm": "protonet", "meta_sgd": True}, r"meta.meta_sgd.*'protonet' has none"),
    ({"algorithm": "reptile", "meta_sgd": True}, r"meta.meta_sgd"),
    ({"algorithm": "anil", "inner_params": "all"}, r"meta.inner_params is 'all'; anil adapts only the head"),
    ({"algorithm": "maml", "inner_params": "lora"}, r"meta.inner_params.*needs meta\.lora \(LoRA adapters"),
    ({"lora": {"r": 0}}, r"meta\.lora\.r is 0; allowed: an integer >= 1"),
    ({"lora": {"rank": 2}}, r"meta\.lora: unknown setting\(s\) \['rank'\]"),
    ({"algorithm": "maml", "first_order": True}, r"meta.first_order.*fomaml"),
    ({"inner_step": 3}, r"meta: unknown setting\(s\) \['inner_step'\]"),
])
def test_errors_name_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        MetaConfig.from_params(params)


def test_training_config_names_are_shared():
    from dataclasses import fields

    from fastadapt.models.training import TrainingConfig

    shared = {"max_steps", "max_seconds", "eval_every", "early_stop_patience", "checkpoint_every",
              "checkpoint_dir", "seed", "device", "num_threads", "log_every", "max_grad_norm"}
    assert shared <= {f.name for f in fields(TrainingConfig)}
    assert shared <= {f.name for f in fields(MetaConfig)}


def test_saved_configs_with_the_old_lora_keys_still_load():
    """Meta-learners saved before the LoRA block had lora_rank / lora_alpha and no adapter dropout."""
    from dataclasses import asdict

    old = {**asdict(MetaConfig()), "lora_rank": 2, "lora_alpha": None}
    del old["lora"]
    lora = MetaConfig.from_saved(old).lora
    assert (lora.r, lora.lora_alpha, lora.lora_dropout, lora.target_modules) == (2, 4, 0.0, ("query", "value"))
    saved = asdict(MetaConfig.from_params({"lora": {"r": 3, "lora_dropout": 0.2}}))
    assert MetaConfig.from_saved(saved).lora == MetaConfig.from_params({"lora": {"r": 3, "lora_dropout": 0.2}}).lora
