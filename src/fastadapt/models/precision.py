"""Which arithmetic a forward pass runs in: the one rule for encoding and for training loops.

`auto` autocasts matrix products to bfloat16 where the hardware does them natively: a CUDA device
with bf16, or a CPU with AVX512-BF16 or AMX tiles (oneDNN's bf16 kernels; on other CPUs bf16 is
emulated and slower, so `auto` stays float32 there). Weights, norms, softmax and the optimiser stay
float32. Measured on the 2-core development CPU (AMX): encoding 770 Banking77 texts with MiniLM-L6
took 2.5 s in float32 and 1.5 s under bf16 autocast, the embeddings at cosine >= 0.99996 from the
float32 ones (`tests/models/test_precision.py` holds a bound of 0.999 on its tiny model); a
MiniLM training step of 64 texts 1.1 s and 0.7 s. `no` is exact float32 everywhere.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

PRECISIONS = ("auto", "no", "bf16", "fp16")


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 matrices in hardware (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # torch exposes these CPU feature probes only under private names (torch 2.x).
        probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None),
                  getattr(torch.cpu, "_is_amx_tile_supported", None))
        return any(probe is not None and probe() for probe in probes)
    return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for plain float32.

    `bf16` autocasts on any device; `fp16` on CUDA only (CPU fp16 kernels are slow);
    `auto` picks bf16 where it is native, fp16 on a CUDA device without bf16, else float32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision '{precision}' is unknown; allowed: {list(PRECISIONS)}")
    if precision == "no":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16 if device.type == "cuda" else None
    if native_bfloat16(device):
        return torch.bfloat16
    return torch.float16 if device.type == "cuda" else None


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """`torch.autocast` for `precision` on `device`, or a no-op context for float32."""
    dtype = autocast_dtype(precision, device)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
