"""Synthetic daily counts, small hand-made streams and a SQLite MLflow store for the monitoring tests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest


@contextlib.contextmanager
def _sqlite_tracking(root: Path, experiment: str) -> Iterator[str]:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(experiment_id=mlflow.create_experiment(experiment,
                                                                     artifact_location=str(root / "artifacts")))
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def sqlite_tracking() -> Callable[[Path, str], contextlib.AbstractContextManager[str]]:
    """`with sqlite_tracking(root, experiment) as uri:` MLflow tracks to a fresh SQLite store (and
    registry) under `root`, `experiment` current; the previous tracking URI comes back after."""
    return _sqlite_tracking


def null_daily(
    rng: np.random.Generator,
    n_entities: int,
    n_days: int,
    volume: tuple[float, float] = (2.0, 30.0),
    share: tuple[float, float] = (0.05, 0.7),
) -> pd.DataFrame:
    """Counts without surges: each entity has its own constant volume and negative share."""
    volumes = rng.uniform(*volume, n_entities)
    shares = rng.uniform(*share, n_entities)
    n = rng.poisson(volumes[:, None], (n_entities, n_days))
    negative = rng.binomial(n, shares[:, None])
    days = pd.date_range("2024-01-01", periods=n_days, freq="D")
    return pd.DataFrame(
        {
            "entity": np.repeat([f"e{i:03d}" for i in range(n_entities)], n_days),
            "day": np.tile(days, n_entities),
            "n": n.ravel(),
            "n_negative": negative.ravel(),
        }
    )


@pytest.fixture
def make_null_daily() -> Callable[..., pd.DataFrame]:
    return null_daily


@pytest.fixture
def surge_daily() -> pd.DataFrame:
    """Three entities, 60 days at 10 items a day; entity B has 9 negatives of 10 on day 45.

    Shares: A 0.2, B 0.2, C 0.5 (binomial noise, fixed seed).
    """
    rng = np.random.default_rng(7)
    daily = null_daily(rng, 3, 60, volume=(10, 10), share=(0.2, 0.2))
    daily["n"] = 10
    shares = {"e000": 0.2, "e001": 0.2, "e002": 0.5}
    daily["n_negative"] = rng.binomial(10, daily["entity"].map(shares).to_numpy())
    daily["entity"] = daily["entity"].map({"e000": "A", "e001": "B", "e002": "C"})
    surge = (daily["entity"] == "B") & (daily["day"] == pd.Timestamp("2024-02-14"))
    daily.loc[surge, "n_negative"] = 9
    return daily


@pytest.fixture
def tiny_stream() -> pd.DataFrame:
    """Tickers X and Y, 12 days of 6 posts each: one bearish a day, but X's day 11 is all bearish.

    Day 11 is 2024-03-11. A few posts have no label (they are left out of the counts).
    """
    rows = []
    for ticker in ("X", "Y"):
        for day in range(1, 13):
            for post in range(6):
                bearish = post == 0 or (ticker == "X" and day == 11)
                rows.append(
                    {
                        "published_at": pd.Timestamp(2024, 3, day, 9 + post),
                        "ticker": ticker,
                        "headline": f"{ticker} day {day} post {post}",
                        "label": "bearish" if bearish else "bullish",
                    }
                )
    rows.append({"published_at": pd.Timestamp(2024, 3, 5), "ticker": "X", "headline": "unlabelled",
                 "label": None})
    stream = pd.DataFrame(rows)
    stream.insert(0, "row_id", np.arange(len(stream)))
    return stream
