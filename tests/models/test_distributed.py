"""`run_distributed`: in-process for one process, elastic launch with gloo for several; `DistributedConfig`'s
checks of bad settings."""

from __future__ import annotations

import socket

import pytest
import torch

from fastadapt.config import ConfigError
from fastadapt.models.distributed import (
    DistributedConfig,
    resolve_backend,
    run_distributed,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rank_sum(offset: int) -> dict:
    """Each process contributes rank + offset; every process sees the sum."""
    value = torch.tensor([float(torch.distributed.get_rank() + offset)])
    torch.distributed.all_reduce(value)
    return {"sum": value.item(), "rank": torch.distributed.get_rank(),
            "world": torch.distributed.get_world_size(), "backend": torch.distributed.get_backend()}


def in_process(value: int) -> tuple[int, bool]:
    return value * 2, torch.distributed.is_initialized()


def test_one_process_runs_in_this_process_without_a_process_group():
    assert run_distributed(in_process, (21,), DistributedConfig(nproc_per_node=1)) == (42, False)


@pytest.mark.slow
def test_two_gloo_processes_return_rank_zeros_result():
    config = DistributedConfig.from_params({"nproc_per_node": 2, "rdzv_endpoint": f"127.0.0.1:{free_port()}",
                                            "backend": "auto" if not torch.cuda.is_available() else "gloo"},
                                           where="distributed")
    result = run_distributed(rank_sum, (10,), config)
    assert result == {"sum": 21.0, "rank": 0, "world": 2, "backend": "gloo"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nproc_per_node": 0}, r"distributed\.nproc_per_node is 0; allowed: an integer >= 1"),
        ({"nnodes": True}, r"distributed\.nnodes is True; allowed: an integer >= 1"),
        ({"max_restarts": -1}, r"distributed\.max_restarts is -1; allowed: an integer >= 0"),
        ({"nprocs": 2}, r"distributed: unknown setting\(s\) \['nprocs'\]"),
        ({"nnodes": 2, "node_rank": 2}, r"distributed\.node_rank is 2; allowed: 0 to nnodes-1 = 1"),
        ({"backend": "mpi"}, r"distributed\.backend is 'mpi'; allowed: \['auto', 'gloo', 'nccl'\]"),
        ({"rdzv_backend": "etcd"}, r"distributed\.rdzv_backend is 'etcd'; allowed: \['c10d', 'static'\]"),
        ({"rdzv_endpoint": "nowhere"}, r"distributed\.rdzv_endpoint is 'nowhere'; allowed: 'host:port'"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DistributedConfig.from_params(kwargs, where="distributed")


def test_a_config_built_directly_is_checked_before_launching():
    with pytest.raises(ConfigError, match=r"^pretraining\.distributed\.nproc_per_node is 0; allowed: an integer >= 1$"):
        run_distributed(in_process, (1,), DistributedConfig(nproc_per_node=0), where="pretraining.distributed")


def test_world_size_is_processes_times_nodes():
    config = DistributedConfig.from_params({"nproc_per_node": 3, "nnodes": 2, "node_rank": 1}, where="d")
    assert config.world_size == 6 and DistributedConfig().world_size == 1


def test_auto_backend_is_nccl_on_cuda_else_gloo():
    assert resolve_backend("auto") == ("nccl" if torch.cuda.is_available() else "gloo")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"pretraining\.distributed\.backend is 'nccl' but .* no CUDA device"):
            resolve_backend("nccl", where="pretraining.distributed")
        with pytest.raises(ConfigError, match="no CUDA device"):  # checked where it depends on the machine
            run_distributed(in_process, (1,), DistributedConfig(backend="nccl"))
