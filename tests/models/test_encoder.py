"""Sentence embeddings: rows in the input order whatever the batching, padding never counted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastadapt.models.encoder import embed_texts, pool_hidden_states, resolve_device

from tests.models.conftest import CORPUS


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device 'gpu0' is not a torch device; use auto, cpu or cuda"):
        resolve_device("gpu0")


def test_mean_pooling_leaves_out_the_padding_and_cls_takes_the_first_token():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(pool_hidden_states(hidden, mask, "mean"), torch.tensor([[2.0, 3.0]]))
    torch.testing.assert_close(pool_hidden_states(hidden, mask, "cls"), torch.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"pooling 'max' is unknown; allowed: \['mean', 'cls'\]"):
        pool_hidden_states(hidden, mask, "max")


def test_embeddings_keep_the_input_order_whatever_the_batch(tiny_backbone):
    texts = [CORPUS[2], CORPUS[0] + " " + CORPUS[1], "refund", CORPUS[3]]
    batched = embed_texts(tiny_backbone, texts, batch_size=2, device="cpu", progress=False)
    one_by_one = np.vstack([embed_texts(tiny_backbone, [t], batch_size=1, device="cpu", progress=False)
                            for t in texts])
    assert batched.shape == (4, 32) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)  # padding in a batch changes nothing
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(batched[0], batched[2])


def test_unnormalised_embeddings_are_the_pooled_states(tiny_backbone):
    raw = embed_texts(tiny_backbone, CORPUS[:2], normalize=False, device="cpu", progress=False, precision="no")
    inputs = tiny_backbone.tokenizer(CORPUS[:1], return_tensors="pt")
    with torch.inference_mode():
        hidden = tiny_backbone.model.eval()(**inputs).last_hidden_state
    np.testing.assert_allclose(raw[0], hidden[0].mean(0).numpy(), atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_no_texts_give_an_empty_matrix(tiny_backbone):
    assert embed_texts(tiny_backbone, [], progress=False).shape == (0, 32)
