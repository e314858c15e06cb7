"""The bounded model server (`fastadapt.monitoring.server`) on loopback, and the bad requests it must survive.

Used by the classifier and answer-suggester serving tests: `bounded_server` starts the real server
in a subprocess on a free 127.0.0.1 port; `check_bad_requests` sends each hostile request and,
after each, a good one that must still be answered.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

STARTUP_SECONDS = 120
MAX_BODY = 1_000_000
MAX_DEPTH = 32
SHORT = 1_000  # bytes an error answer may have at most


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def bounded_server(model_uri: str, tracking_uri: str, log_path: Path) -> Iterator[str]:
    """`python -m fastadapt.monitoring.server -m MODEL_URI` on 127.0.0.1; yields its base URL."""
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1] / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "fastadapt.monitoring.server", "-m", model_uri, "--host", "127.0.0.1",
             "--port", str(port), "--max-body-bytes", str(MAX_BODY), "--max-json-depth", str(MAX_DEPTH)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(process, base, log_path)
            yield base
        finally:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


def post(base: str, data, content_type: str = "application/json", timeout: float = 60) -> requests.Response:
    return requests.post(f"{base}/invocations", data=data, headers={"Content-Type": content_type}, timeout=timeout)


def check_bad_requests(base: str, good: Callable[[], None]) -> dict[str, float]:
    """Every hostile request gets a short 4xx and `good()` still succeeds after it; some timings."""
    timings: dict[str, float] = {}

    def short_4xx(response: requests.Response, status: int | None, words: str) -> None:
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
        assert status is None or response.status_code == status, (response.status_code, response.content[:300])
        assert len(response.content) < SHORT, len(response.content)
        assert words in response.json()["message"], response.json()
        good()

    nested = '{"dataframe_split": ' + "[" * 5_000 + "]" * 5_000 + "}"
    short_4xx(post(base, nested), 400, f"deeper than {MAX_DEPTH} levels")
    nested_in_data = json.dumps({"dataframe_split": {"columns": ["text"], "data": [["x"]]}})[:-2] + \
        ', "extra": ' + "{\"a\": " * 3_000 + "1" + "}" * 3_000 + "}}"
    short_4xx(post(base, nested_in_data), 400, "deeper than")
    started = time.perf_counter()
    short_4xx(post(base, b"x" * 10_000_000), 413, f"at most {MAX_BODY} bytes")
    timings["10MB_invalid_seconds"] = time.perf_counter() - started
    short_4xx(post(base, b"{" + b"x" * (MAX_BODY - 10)), 400, "")  # invalid, under the limit: not echoed
    short_4xx(post(base, (b"x" * 100_000 for _ in range(30))), 413, "at most")  # chunked, no Content-Length
    short_4xx(post(base, json.dumps({"dataframe_split": {"columns": ["text"], "data": [["a" * 900_000]]}})),
              400, "at most")  # the model's own text-length check, under the body limit
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: post(base, b"x" * 10_000_000, timeout=120), range(20)))
    timings["20_concurrent_10MB_seconds"] = time.perf_counter() - started
    assert [a.status_code for a in answers] == [413] * 20
    assert all(len(a.content) < SHORT for a in answers)
    good()
    return timings


def wait_until_serving(process: subprocess.Popen, base: str, log_path: Path) -> float:
    """Seconds until `base`/ping answers 200; the test fails if the server exits or stays silent."""
    started = time.perf_counter()
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(f"{base}/ping", timeout=1).status_code == 200:
                return time.perf_counter() - started
        except requests.ConnectionError:
            pass
        if time.perf_counter() - started > STARTUP_SECONDS:
            pytest.fail(f"the server did not answer within {STARTUP_SECONDS} s:\n{log_path.read_text()}")
        time.sleep(0.5)
