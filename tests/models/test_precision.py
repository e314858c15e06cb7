"""The one precision rule: bf16 autocast only where it is native, float32 when asked, and
embeddings under it that stay next to the float32 ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastadapt.models.encoder import embed_texts
from fastadapt.models.precision import autocast, autocast_dtype, native_bfloat16

from tests.models.conftest import CORPUS

CPU = torch.device("cpu")


def test_no_is_float32_and_bf16_is_bf16_on_any_device():
    assert autocast_dtype("no", CPU) is None
    assert autocast_dtype("bf16", CPU) is torch.bfloat16
    assert autocast_dtype("fp16", CPU) is None  # CPU fp16 kernels are slow: float32 instead


def test_auto_autocasts_on_this_cpu_exactly_when_it_has_bf16_in_hardware():
    assert autocast_dtype("auto", CPU) is (torch.bfloat16 if native_bfloat16(CPU) else None)
    with autocast("bf16", CPU):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with autocast("no", CPU):
        assert not torch.is_autocast_enabled("cpu")


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match=r"precision 'fp8' is unknown; allowed: \['auto', 'no', 'bf16', 'fp16'\]"):
        autocast_dtype("fp8", CPU)


def test_bf16_embeddings_stay_next_to_the_float32_ones_and_are_reproducible(tiny_backbone):
    texts = CORPUS[:4]
    exact = embed_texts(tiny_backbone, texts, device="cpu", progress=False, precision="no")
    fast = embed_texts(tiny_backbone, texts, device="cpu", progress=False, precision="bf16")
    again = embed_texts(tiny_backbone, texts, device="cpu", progress=False, precision="bf16")
    assert fast.dtype == np.float32
    assert not np.array_equal(fast, exact)  # it did run in bf16
    assert (fast * exact).sum(axis=1).min() >= 0.999
    np.testing.assert_array_equal(fast, again)
