"""Masking, whole-word masking, the tied masked-LM head, the SimCSE loss, the combined model."""

from __future__ import annotations

import pytest
import torch

from fastadapt.config import ConfigError
from fastadapt.models.backbones import load_backbone
from fastadapt.pretraining.data import continuation_word_ids, tokenise_texts
from fastadapt.pretraining.objectives import IGNORE_INDEX, PretrainingModel, mask_tokens, simcse_loss

from tests.pretraining.conftest import TINY_BERT

MASK_ID, VOCAB = 4, 1000


def random_rows(rows: int = 400, width: int = 30, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, VOCAB, (rows, width), generator=generator)
    lengths = torch.randint(3, width + 1, (rows,), generator=generator)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    candidates = mask.clone()
    candidates[:, 0] = False  # a [CLS]-like first token is never masked
    return ids, candidates


def test_token_masking_rates_specials_and_reproducibility():
    ids, candidates = random_rows()
    masked, labels = mask_tokens(ids, candidates, torch.Generator().manual_seed(1), 0.15, MASK_ID, VOCAB)
    selected = labels != IGNORE_INDEX
    assert not (selected & ~candidates).any()  # never padding or special tokens
    assert selected.any(1).all()  # at least one prediction per text
    assert selected.sum() / candidates.sum() == pytest.approx(0.15, abs=0.02)
    assert torch.equal(labels[selected], ids[selected])
    became_mask = (masked == MASK_ID) & selected
    unchanged = (masked == ids) & selected
    assert became_mask.sum() / selected.sum() == pytest.approx(0.8, abs=0.05)
    assert unchanged.sum() / selected.sum() == pytest.approx(0.1, abs=0.04)
    assert torch.equal(masked[~selected], ids[~selected])
    again = mask_tokens(ids, candidates, torch.Generator().manual_seed(1), 0.15, MASK_ID, VOCAB)
    other = mask_tokens(ids, candidates, torch.Generator().manual_seed(2), 0.15, MASK_ID, VOCAB)
    assert torch.equal(again[0], masked) and torch.equal(again[1], labels)
    assert not torch.equal(other[1], labels)


def test_continuation_pieces_make_words():
    tokens = ["[CLS]", "the", "d", "##ec", "##l", "bank", "##s", "[SEP]"]
    special = [True, False, False, False, False, False, False, True]
    assert continuation_word_ids(tokens, special) == [-1, 0, 1, 1, 1, 2, 2, -1]


def test_whole_word_masking_masks_every_piece_of_a_chosen_word(texts, tokenizer):
    tokenised = tokenise_texts(tokenizer, texts, max_length=32)
    width = max(len(ids) for ids in tokenised.token_ids)
    ids = torch.zeros(len(texts), width, dtype=torch.long)
    words = torch.full_like(ids, -1)
    for row, (token_ids, word_ids) in enumerate(zip(tokenised.token_ids, tokenised.word_ids)):
        ids[row, : len(token_ids)] = torch.tensor(token_ids)
        words[row, : len(word_ids)] = torch.tensor(word_ids)
    # the fast tokeniser's word ids agree with the ## continuation rule
    for token_ids, word_ids in zip(tokenised.token_ids, tokenised.word_ids):
        tokens = tokenizer.convert_ids_to_tokens(token_ids)
        assert word_ids == continuation_word_ids(tokens, [t in tokenizer.all_special_tokens for t in tokens])
    assert any(len(set(w)) < len(w) for w in tokenised.word_ids)  # some words have several pieces

    candidates = words >= 0
    _, labels = mask_tokens(ids, candidates, torch.Generator().manual_seed(0), 0.3, MASK_ID, len(tokenizer),
                            word_ids=words)
    selected = labels != IGNORE_INDEX
    assert selected.any(1).all()
    split_words = 0
    for row in range(len(texts)):
        for word in words[row][candidates[row]].unique():
            pieces = selected[row][words[row] == word]
            assert pieces.all() or not pieces.any()  # a word is masked whole or not at all
            split_words += bool(pieces.all() and len(pieces) > 1)
    assert split_words > 0
    # word-level draw: about 30 % of the words
    n_words = sum(len(set(w) - {-1}) for w in tokenised.word_ids)
    chosen = sum(len(set(words[r][selected[r]].tolist())) for r in range(len(texts)))
    assert chosen / n_words == pytest.approx(0.3, abs=0.06)


def test_simcse_loss_rewards_matching_views_and_scales_with_temperature():
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(8, 16, generator=generator)
    matching = simcse_loss(first, first + 0.01 * torch.randn(8, 16, generator=generator), 0.05)
    shuffled = simcse_loss(first, first[torch.tensor([1, 2, 3, 4, 5, 6, 7, 0])], 0.05)
    assert matching < 0.01
    assert shuffled > 1.0
    assert simcse_loss(first, first, 1.0) > simcse_loss(first, first, 0.05)


def tiny_encoder(tokenizer):
    return load_backbone("tiny-bert", tokenizer=tokenizer, config_overrides=TINY_BERT).model


def test_pretraining_model_ties_the_fresh_head_and_weights_the_losses(texts, tokenizer):
    from fastadapt.pretraining.data import PretrainingBatches

    encoder = tiny_encoder(tokenizer)
    model = PretrainingModel(encoder, {"mlm": 1.0, "contrastive": 0.5})
    assert model.mlm_head.decoder.weight is encoder.get_input_embeddings().weight
    assert sum(1 for name, _ in model.named_parameters() if "decoder" in name) == 0  # shared, listed once
    batches = PretrainingBatches(tokenise_texts(tokenizer, texts, 32), tokenizer, batch_size=8)
    batch = batches.batch(0, 0)
    model.eval()
    with torch.no_grad():
        losses = model(**batch)
        mlm_only = PretrainingModel(encoder, {"mlm": 1.0}).eval()
        mlm_only.mlm_head.load_state_dict(model.mlm_head.state_dict())
        assert set(mlm_only(**batch)) == {"mlm", "loss"}
        assert mlm_only(**batch)["mlm"] == pytest.approx(float(losses["mlm"]), rel=1e-5)
    assert float(losses["loss"]) == pytest.approx(float(losses["mlm"] + 0.5 * losses["contrastive"]), rel=1e-5)
    contrastive = PretrainingModel(encoder, {"contrastive": 1.0, "mlm": 0})
    assert not hasattr(contrastive, "mlm_head")
    assert set(contrastive(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])) == {
        "contrastive", "loss"}


@pytest.mark.parametrize(
    ("objectives", "message"),
    [
        ({"mlm": 1.0, "electra": 1.0}, (r"pretraining\.objectives: unknown objective\(s\) \['electra'\]; "
                                        r"allowed: \['mlm', 'contrastive'\]")),
        ({"mlm": 0, "contrastive": 0}, r"pretraining\.objectives: every weight is 0"),
        ({"mlm": -1}, r"pretraining\.objectives\.mlm is -1; allowed: a weight >= 0"),
    ],
)
def test_bad_objectives_are_a_value_error_naming_the_parameter(tokenizer, objectives, message):
    with pytest.raises(ValueError, match=message) as caught:
        PretrainingModel(tiny_encoder(tokenizer), objectives)
    assert isinstance(caught.value, ConfigError)
