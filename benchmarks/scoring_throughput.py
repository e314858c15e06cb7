"""Headline scoring throughput: ours vs `sentence-transformers`' batched `encode` (and a naive loop).

All score the same headlines (a seeded sample of the news stream) with the same model: the
all-MiniLM-L6-v2 encoder (mean pooling, L2-normalised) and a logistic-regression head fitted on a
few hundred Financial PhraseBank training rows. The difference is how texts reach the encoder:

- ours: `fastadapt.monitoring.scoring.score_stream`, the monitoring pipeline's own code path:
  `predict_proba` on batches of texts; inside, `fastadapt.models.encoder.embed_texts` tokenises
  once, groups texts of similar length and pads each batch to its own longest text;
- encode (the peer a user would pick, PROTOCOL.md section 7): `SentenceTransformer(<the same
  model folder>).encode(texts, batch_size=32)`, its documented defaults (it sorts texts by length
  and pads per batch too), `max_seq_length` set to the same limit, then the same head;
- naive: `transformers.pipeline("feature-extraction")` called once per headline, the token
  states mean-pooled and normalised, then the same head.

Runs alternate (ours, encode, naive, ours...) so that a machine shared with other work slows all
alike; headlines per second are the medians over rounds, and the probabilities of the paths are
compared (they must agree to float precision).

    python benchmarks/scoring_throughput.py                 # 500 headlines, 2 rounds, CPU threads = cores
    python benchmarks/scoring_throughput.py --n-texts 2000 --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
STREAM = ROOT / "data" / "03_primary" / "news_stream.parquet"
SPLITS = ROOT / "data" / "04_feature" / "finance_sentiment" / "splits.parquet"


def headlines(n_texts: int, seed: int) -> pd.DataFrame:
    if not STREAM.is_file():
        sys.exit(f"{STREAM} is missing: run `kedro run --pipeline ingestion` first")
    stream = pd.read_parquet(STREAM)
    stream = stream[stream["source"].isin(["cnbc", "guardian"])]
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(stream), min(n_texts, len(stream)), replace=False))
    return stream.iloc[chosen][["row_id", "headline"]].reset_index(drop=True)


def training_rows(n_rows: int, seed: int) -> pd.DataFrame:
    if not SPLITS.is_file():
        sys.exit(f"{SPLITS} is missing: run `kedro run --pipeline features` first")
    splits = pd.read_parquet(SPLITS)
    train = splits[splits["split"] == "train"]
    return train.sample(min(n_rows, len(train)), random_state=seed)[["text", "label"]]


class MiniLMSentiment:
    """A TextClassifier: MiniLM sentence embeddings and a logistic-regression head."""

    def __init__(self, backbone, head, device: str, batch_size: int, max_length: int) -> None:
        self.backbone, self.head = backbone, head
        self.classes_ = [str(c) for c in head.classes_]
        self.device, self.batch_size, self.max_length = device, batch_size, max_length

    def embed(self, texts):
        from fastadapt.models.encoder import embed_texts

        return embed_texts(self.backbone, list(texts), batch_size=self.batch_size, max_length=self.max_length,
                           pooling="mean", normalize=True, device=self.device, progress=False)

    def predict_proba(self, texts):
        return self.head.predict_proba(self.embed(texts))

    def predict(self, texts):
        return np.asarray(self.classes_, dtype=object)[self.predict_proba(texts).argmax(axis=1)]


def run_ours(model: MiniLMSentiment, stream: pd.DataFrame, batch_size: int) -> tuple[float, np.ndarray]:
    from fastadapt.monitoring.scoring import ScoringConfig, score_stream

    config = ScoringConfig(batch_size=batch_size, negative_label="negative", progress=False)
    _sync(model.device)
    started = time.perf_counter()
    scores, _ = score_stream(stream, model, config)
    _sync(model.device)
    seconds = time.perf_counter() - started
    return seconds, scores[[f"proba__{c}" for c in model.classes_]].to_numpy()


def run_naive(pipe, head, texts: list[str], device: str) -> tuple[float, np.ndarray]:
    rows = []
    _sync(device)
    started = time.perf_counter()
    for text in texts:
        states = np.asarray(pipe(text)[0], dtype=np.float32)  # (tokens, hidden): one text, no padding
        vector = states.mean(axis=0)
        vector /= max(np.linalg.norm(vector), 1e-12)
        rows.append(head.predict_proba(vector[None, :])[0])
    _sync(device)
    return time.perf_counter() - started, np.vstack(rows)


def run_encode(st_model, head, texts: list[str], batch_size: int, device: str) -> tuple[float, np.ndarray]:
    _sync(device)
    started = time.perf_counter()
    vectors = st_model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    proba = head.predict_proba(vectors)
    _sync(device)
    return time.perf_counter() - started, proba


def _sync(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-texts", type=int, default=500)
    parser.add_argument("--n-train", type=int, default=300, help="PhraseBank rows the head is fitted on")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128, help="texts per encoder batch (ours)")
    parser.add_argument("--score-batch", type=int, default=1024, help="texts per predict_proba call (ours)")
    parser.add_argument("--encode-batch", type=int, default=32, help="encode's batch_size (its default: 32)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression
    from transformers import pipeline

    from fastadapt.models.backbones import load_backbone, minilm_path
    from fastadapt.models.encoder import embed_texts, resolve_device

    torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    stream = headlines(args.n_texts, args.seed)
    texts = stream["headline"].astype(str).tolist()
    backbone = load_backbone("minilm-l6")
    train = training_rows(args.n_train, args.seed)
    features = embed_texts(backbone, train["text"].tolist(), batch_size=args.batch_size, max_length=args.max_length,
                           normalize=True, device=device, progress=False)
    head = LogisticRegression(C=10.0, max_iter=2000).fit(features, train["label"].tolist())
    model = MiniLMSentiment(backbone, head, device, args.batch_size, args.max_length)
    pipe = pipeline("feature-extraction", model=backbone.model, tokenizer=backbone.tokenizer, device=device,
                    tokenize_kwargs={"truncation": True, "max_length": args.max_length})

    st_model = SentenceTransformer(minilm_path(), device=device)
    st_model.max_seq_length = args.max_length

    # Warm-up: first calls pay one-time costs (allocations, kernels) in every path.
    run_ours(model, stream.head(64), args.score_batch)
    run_encode(st_model, head, texts[:64], args.encode_batch, device)
    run_naive(pipe, head, texts[:8], device)

    ours, encode, naive, agreement = [], [], [], []
    for round_ in range(args.rounds):
        seconds, ours_proba = run_ours(model, stream, args.score_batch)
        ours.append(len(texts) / seconds)
        seconds, encode_proba = run_encode(st_model, head, texts, args.encode_batch, device)
        encode.append(len(texts) / seconds)
        seconds, naive_proba = run_naive(pipe, head, texts, device)
        naive.append(len(texts) / seconds)
        agreement.append(max(float(np.abs(ours_proba - naive_proba).max()),
                             float(np.abs(ours_proba - encode_proba).max())))
        print(f"round {round_ + 1}: ours {ours[-1]:.1f}, encode {encode[-1]:.1f}, naive {naive[-1]:.1f} headlines/s")

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"{args.threads} torch threads, device {device}{f' ({gpu})' if gpu else ''}")
    print(f"model: minilm-l6 + logistic regression ({len(train)} PhraseBank rows); {len(texts)} headlines, "
          f"max_length {args.max_length}, encoder batch {args.batch_size}")
    print(f"largest probability difference between ours and the other paths: {max(agreement):.2e}")
    ours_rate, encode_rate, naive_rate = statistics.median(ours), statistics.median(encode), statistics.median(naive)
    print(f"ours (batched, length-bucketed): {ours_rate:.1f} headlines/s")
    print(f"sentence-transformers encode (batch_size {args.encode_batch}): {encode_rate:.1f} headlines/s")
    print(f"naive (transformers pipeline, one at a time): {naive_rate:.1f} headlines/s")
    print(f"ratio to encode: {ours_rate / encode_rate:.2f}x (target >= 1.0x)")
    print(f"ratio to naive: {ours_rate / naive_rate:.1f}x (target 5x)")


if __name__ == "__main__":
    main()
