"""A bounded HTTP server for any fastadapt pyfunc model (classifier or answer suggester).

`mlflow models serve` reads any body whole and parses any JSON: a 5,000-level nested body ends
in a 500 with a RecursionError, a 10 MB invalid body gets a 400 that echoes 10 MB back, and
nothing limits the size of a request. This server runs MLflow's own scoring app (the same
`/invocations`, `/ping`, `/health`, `/version` and request formats) behind an ASGI layer that

- answers 413 to a body over `max_body_bytes` (from Content-Length before reading, else while
  reading), draining at most `DRAIN_FACTOR` times the limit so the client still gets the answer;
- answers 400 to JSON nested deeper than `max_json_depth` before anything parses it;
- shortens every error answer to one JSON message of at most `max_error_chars` characters (no
  stack trace, never the request body echoed back).

The model's own checks (a `text` column, text length, batch size) still answer 400 with their
message. Usage::

    fastadapt-serve -m models:/finance_sentiment@champion --port 5001 --max-body-bytes 4000000
    python -m fastadapt.monitoring.server -m models:/answer_suggester/1 --max-json-depth 32
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import click
import numpy as np

DEFAULT_MAX_BODY_BYTES = 4_000_000
DEFAULT_MAX_JSON_DEPTH = 32
DEFAULT_MAX_ERROR_CHARS = 500
DRAIN_FACTOR = 16

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

def json_depth(body: bytes) -> int:
    """How deep `[` / `{` nest in `body`, brackets inside strings skipped, without parsing it.

    Vectorised and linear (a regular expression for strings backtracks quadratically on an
    unterminated one): a quote opens or closes a string unless an odd run of backslashes precedes
    it; brackets count only outside strings.
    """
    data = np.frombuffer(body, dtype=np.uint8)
    if data.size == 0:
        return 0
    positions = np.arange(data.size)
    backslash = data == ord("\\")
    last_other = np.maximum.accumulate(np.where(~backslash, positions, -1))
    run_before = np.empty(data.size, dtype=np.int64)
    run_before[0] = 0
    run_before[1:] = positions[:-1] - last_other[:-1]
    toggles = (data == ord('"')) & (run_before % 2 == 0)
    inside = (np.cumsum(toggles) - toggles) % 2 == 1  # after an opening quote, up to its closing one
    outside = ~inside & ~toggles
    opens = outside & ((data == ord("[")) | (data == ord("{")))
    closes = outside & ((data == ord("]")) | (data == ord("}")))
    return int(np.cumsum(opens.astype(np.int64) - closes).max(initial=0))


def short_error(body: bytes, limit: int) -> bytes:
    """The error answer `body` as `{"error_code", "message"}`, the message cut to `limit` chars."""
    try:
        parsed = json.loads(body)
        code = str(parsed.get("error_code", "BAD_REQUEST")) if isinstance(parsed, dict) else "BAD_REQUEST"
        message = str(parsed.get("message", "")) if isinstance(parsed, dict) else str(parsed)
    except (ValueError, UnicodeDecodeError):
        code, message = "BAD_REQUEST", body[: limit * 4].decode("utf-8", "replace")
    # MLflow quotes the input before the model's own message ("Failed to predict data '<the
    # frame>'. \nError: <message>"): keep the model's message, else the first line.
    if "\nError: " in message:
        message = message.rsplit("\nError: ", 1)[1]
    message = message.strip().splitlines()[0] if message.strip() else "bad request"
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    return json.dumps({"error_code": code, "message": message}).encode()


class BoundedRequests:
    """ASGI middleware: body-size and JSON-depth limits, and short error answers (module docstring)."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 max_json_depth: int = DEFAULT_MAX_JSON_DEPTH, max_error_chars: int = DEFAULT_MAX_ERROR_CHARS) -> None:
        self.app = app
        self.max_body_bytes = int(max_body_bytes)
        self.max_json_depth = int(max_json_depth)
        self.max_error_chars = int(max_error_chars)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.lower(): value for key, value in scope.get("headers", [])}
        declared = headers.get(b"content-length")
        if declared is not None and not declared.strip().isdigit():
            await _reply(send, 400, "Content-Length must be a number of bytes")
            return
        too_large = declared is not None and int(declared) > self.max_body_bytes
        body, received, more = bytearray(), 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            more = bool(message.get("more_body", False))
            if received > self.max_body_bytes:
                too_large = True
            if too_large:
                body.clear()  # drain without keeping, so the client can read the 413
                if received > DRAIN_FACTOR * self.max_body_bytes:
                    break
            else:
                body += chunk
        if too_large:
            size = f"{int(declared)} bytes" if declared is not None else f"over {self.max_body_bytes} bytes"
            await _reply(send, 413, f"request body of {size}; at most {self.max_body_bytes} bytes are accepted")
            return
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if "json" in content_type and json_depth(bytes(body)) > self.max_json_depth:
            await _reply(send, 400, f"JSON nested deeper than {self.max_json_depth} levels; send "
                                    f'{{"dataframe_split": {{"columns": ["text"], "data": [["..."]]}}}}')
            return
        await self.app(scope, _replay(bytes(body), receive), self._shortening(send))

    def _shortening(self, send: Send) -> Send:
        """`send` that passes 2xx/3xx answers on and rewrites error answers as short messages."""
        state: dict[str, Any] = {"start": None, "body": bytearray()}

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    await send(message)
                else:
                    state["start"] = message
                return
            if message["type"] == "http.response.body" and state["start"] is not None:
                state["body"] += message.get("body", b"")
                if len(state["body"]) > 64 * self.max_error_chars:
                    del state["body"][64 * self.max_error_chars:]
                if not message.get("more_body", False):
                    await _reply(send, state["start"]["status"], None,
                                 short_error(bytes(state["body"]), self.max_error_chars))
                    state["start"] = None
                return
            await send(message)

        return wrapped


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _reply(send: Send, status: int, message: str | None, content: bytes | None = None) -> None:
    if content is None:
        code = "REQUEST_TOO_LARGE" if status == 413 else "BAD_REQUEST"
        content = json.dumps({"error_code": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": content, "more_body": False})


def bounded_app(model_uri: str, **limits: int) -> BoundedRequests:
    """MLflow's scoring app for the pyfunc model at `model_uri`, behind :class:`BoundedRequests`."""
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    return BoundedRequests(scoring_server.init(mlflow.pyfunc.load_model(model_uri)), **limits)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-m", "--model-uri", required=True, help="e.g. models:/finance_sentiment@champion")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", default=5001, show_default=True, type=int)
@click.option("--max-body-bytes", default=DEFAULT_MAX_BODY_BYTES, show_default=True, type=click.IntRange(min=1),
              help="Larger request bodies get 413.")
@click.option("--max-json-depth", default=DEFAULT_MAX_JSON_DEPTH, show_default=True, type=click.IntRange(min=1),
              help="JSON nested deeper gets 400.")
@click.option("--max-error-chars", default=DEFAULT_MAX_ERROR_CHARS, show_default=True, type=click.IntRange(min=20),
              help="Error messages are cut to this length.")
@click.option("--limit-concurrency", default=64, show_default=True, type=click.IntRange(min=1),
              help="Connections served at once; more get 503.")
def main(model_uri: str, host: str, port: int, max_body_bytes: int, max_json_depth: int, max_error_chars: int,
         limit_concurrency: int) -> None:
    """Serve a fastadapt pyfunc model over HTTP with bounded requests."""
    import uvicorn

    app = bounded_app(model_uri, max_body_bytes=max_body_bytes, max_json_depth=max_json_depth,
                      max_error_chars=max_error_chars)
    uvicorn.run(app, host=host, port=port, limit_concurrency=limit_concurrency, log_level="warning")


if __name__ == "__main__":
    main()
