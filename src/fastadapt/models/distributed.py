"""Multi-process data-parallel runs through PyTorch's own elastic launcher (what `torchrun` uses).

`run_distributed(fn, args, config)` starts `config.nproc_per_node` worker processes on this host
with `torch.distributed.launcher.api.elastic_launch`; each initialises the default process group
(gloo on CPU, nccl on GPU, one GPU per local rank), calls `fn(*args)`, and the call returns what
rank 0's `fn` returned. Inside `fn`, `fastadapt.models.training.train_model` sees the process group
and trains with DistributedDataParallel.

Several hosts: start the same run on every host with `nnodes`, its own `node_rank` and one
`rdzv_endpoint` (host:port of node 0, reachable from all). With the default c10d rendezvous,
node 0 hosts the rendezvous store; with `rdzv_backend="static"`, `node_rank` fixes the ranks.
Only the host holding global rank 0 gets the result; the others get None. Checkpoint resumption
across hosts needs a checkpoint directory that every host sees. The hosts of one run must share a
rendezvous run id: `fastadapt` unless $FASTADAPT_RUN_ID sets another (one host alone draws a
fresh id per call).

`fn` and `args` cross process boundaries: `fn` must be a module-level function, `args` picklable.
The settings are a `DistributedConfig` (the `distributed:` parameter block), checked once when it
is built; `run_distributed` checks only what depends on the machine (CUDA devices for nccl).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fastadapt.config import Checks, ConfigError, Settings

log = logging.getLogger(__name__)

BACKENDS = ("auto", "gloo", "nccl")
RDZV_BACKENDS = ("c10d", "static")


@dataclass(frozen=True)
class DistributedConfig(Settings):
    """How many processes train together: nproc_per_node x nnodes (1 x 1: in this process)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = "127.0.0.1:29400"
    rdzv_backend: str = "c10d"
    backend: str = "auto"  # auto (nccl on CUDA, else gloo) | gloo | nccl
    max_restarts: int = 0

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    def validate(self, where: str = "distributed") -> None:
        check = Checks(self, where)
        for key, minimum in (("nproc_per_node", 1), ("nnodes", 1), ("node_rank", 0), ("max_restarts", 0)):
            check.integer(key, minimum)
        if self.node_rank >= self.nnodes:
            check.fail("node_rank", f"allowed: 0 to nnodes-1 = {self.nnodes - 1}")
        check.choice("backend", BACKENDS)
        check.choice("rdzv_backend", RDZV_BACKENDS)
        if not isinstance(self.rdzv_endpoint, str) or ":" not in self.rdzv_endpoint:
            check.fail("rdzv_endpoint", "allowed: 'host:port'")


def resolve_backend(backend: str = "auto", where: str = "distributed") -> str:
    """`auto` -> nccl when CUDA is present, else gloo; nccl without CUDA is a `ConfigError`."""
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ConfigError(f"{where}.backend is 'nccl' but this machine has no CUDA device; use gloo or auto")
    return backend


def _worker(fn: Callable[..., Any], args: Sequence[Any], backend: str) -> tuple[int, Any]:
    """One worker process: join the process group, run `fn`, leave the group."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    torch.distributed.init_process_group(backend=backend)
    try:
        rank = torch.distributed.get_rank()
        result = fn(*args)
        torch.distributed.barrier()
        return rank, result if rank == 0 else None
    finally:
        torch.distributed.destroy_process_group()


def run_distributed(
    fn: Callable[..., Any],
    args: Sequence[Any] = (),
    config: DistributedConfig = DistributedConfig(),
    where: str = "distributed",
) -> Any:
    """`fn(*args)` on nproc_per_node x nnodes processes; rank 0's return value (None elsewhere).

    One process on one node runs `fn` in this process, without a process group. `where` names
    the parameter block in errors.
    """
    config.validate(where)  # a config built directly, not through from_params, is checked too
    resolved = resolve_backend(config.backend, where)
    if config.world_size == 1:
        return fn(*args)
    if resolved == "nccl" and config.nproc_per_node > torch.cuda.device_count():
        raise ConfigError(
            f"{where}.nproc_per_node is {config.nproc_per_node} but this host has "
            f"{torch.cuda.device_count()} CUDA device(s); nccl needs one device per process"
        )

    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    rdzv_configs: dict[str, Any] = {}
    if config.rdzv_backend == "static":
        rdzv_configs["rank"] = config.node_rank
    else:
        rdzv_configs["is_host"] = config.node_rank == 0
    launch = LaunchConfig(
        min_nodes=config.nnodes,
        max_nodes=config.nnodes,
        nproc_per_node=config.nproc_per_node,
        run_id=os.environ.get("FASTADAPT_RUN_ID",
                              f"fastadapt-{uuid.uuid4().hex[:12]}" if config.nnodes == 1 else "fastadapt"),
        rdzv_endpoint=config.rdzv_endpoint,
        rdzv_backend=config.rdzv_backend,
        rdzv_configs=rdzv_configs,
        max_restarts=config.max_restarts,
        start_method="spawn",
        monitor_interval=0.1,
    )
    log.info("launching %d x %d %s processes (rendezvous %s at %s)", config.nnodes, config.nproc_per_node,
             resolved, config.rdzv_backend, config.rdzv_endpoint)
    results = elastic_launch(launch, _worker)(fn, tuple(args), resolved)
    for rank, result in results.values():
        if rank == 0:
            return result
    return None
