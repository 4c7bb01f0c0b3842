"""A real HTTP server that speaks the OpenAI chat completions API on 127.0.0.1, answering from a script.

    with FakeOpenAI([{"content": "hello"}]) as server:
        client = OpenAICompatible(server.base_url, None, "fake-model")

Each POST /v1/chat/completions consumes one step of the script. A step is a dict:

    {"content": "...", "finish_reason": "stop", "prompt_tokens": 10, "completion_tokens": 20}
                                         a completion (streamed as SSE when the request asks for a stream)
    {"status": 429, "headers": {"Retry-After": "1"}, "body": {...}}
                                         an HTTP error with optional headers and JSON body
    {"hang": 30}                         wait that long before answering (ends at once on close());
                                         combine with any other keys
    {"raw": "not json at all"}           HTTP 200 (or "status") with this body as application/json
    {"content": "...", "chunk_delay": 5} streamed chunks with a pause between them; a list gives the
                                         pause before each chunk (the last repeats): [2, 30] stalls

When the script runs out the server answers 500. ``reject_json_schema=True`` answers 400 to any request
whose ``response_format.type`` is ``json_schema`` without consuming a step (a server without structured
output). GET /v1/models lists one model. ``server.requests`` records every request received.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Step = dict[str, Any]
CHAT_PATH = "/v1/chat/completions"
SCHEMA_REJECTION = "response_format json_schema is not supported by this server"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; ``body`` is the parsed JSON (None if it did not parse)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeOpenAI:
    """The server; start it with ``with`` (or ``start()``/``close()``)."""

    def __init__(self, script: Iterable[Step] = (), *, reject_json_schema: bool = False,
                 model: str = "fake-model") -> None:
        self.script: deque[Step] = deque(script)
        self.reject_json_schema = reject_json_schema
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client, ending in ``/v1``."""
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat completion requests received so far, in order."""
        return [r for r in self.requests if r.method == "POST" and r.path == CHAT_PATH]

    def start(self) -> None:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        handler = type("BoundHandler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving; hanging answers end at once."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def next_step(self) -> Step | None:
        """The next scripted step, or None when the script is used up."""
        with self._lock:
            return self.script.popleft() if self.script else None


class _Handler(BaseHTTPRequestHandler):
    """Answers one request per connection (HTTP/1.0), which also lets a stream end by closing."""

    fake: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # `format`: the base class's name
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/") != "/v1/models":
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        model = {"id": self.fake.model, "object": "model", "created": 0, "owned_by": "fake"}
        self._json(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self._record(body)
        # A broken pipe: the client gave up (its timeout), which is what several tests provoke.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(body if isinstance(body, dict) else {})

    def _record(self, body: Any) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.fake.record(RecordedRequest(self.command, self.path, headers, body))

    def _answer(self, request: dict[str, Any]) -> None:
        if self.path != CHAT_PATH:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        if self.fake.reject_json_schema and (request.get("response_format") or {}).get("type") == "json_schema":
            self._json(400, {"error": {"message": SCHEMA_REJECTION, "type": "invalid_request_error",
                                       "param": "response_format"}})
            return
        step = self.fake.next_step()
        if step is None:
            self._json(500, {"error": {"message": "FakeOpenAI: the script is used up", "type": "server_error"}})
            return
        if step.get("hang") and self.fake.stopping.wait(step["hang"]):
            return  # closing: drop the connection without an answer
        self._play(step, request)

    def _play(self, step: Step, request: dict[str, Any]) -> None:
        status = step.get("status", 200)
        if "raw" in step:
            self._send(status, step["raw"].encode(), "application/json", step.get("headers"))
        elif status != 200:
            body = step.get("body", {"error": {"message": f"scripted status {status}", "type": "scripted"}})
            self._json(status, body, step.get("headers"))
        elif request.get("stream"):
            self._stream(step, request)
        else:
            self._json(200, _completion(step, request, self.fake.model), step.get("headers"))

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, step: Step, request: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        for name, value in (step.get("headers") or {}).items():
            self.send_header(name, value)
        self.end_headers()
        for number, chunk in enumerate(_chunks(step, request, self.fake.model)):
            if number and self.fake.stopping.wait(_delay(step.get("chunk_delay"), number - 1)):
                return
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def _delay(chunk_delay: float | list[float] | None, index: int) -> float:
    """The pause before streamed chunk ``index + 1``: one number for all, or a list (its last item repeats)."""
    if isinstance(chunk_delay, list):
        return chunk_delay[min(index, len(chunk_delay) - 1)] if chunk_delay else 0.0
    return chunk_delay or 0.0


def _usage(step: Step, request: dict[str, Any]) -> dict[str, int]:
    """Token counts from the step, or a rough estimate (4 characters a token)."""
    sent = sum(len(str(m.get("content") or "")) for m in request.get("messages") or [])
    prompt = step.get("prompt_tokens", sent // 4)
    completion = step.get("completion_tokens", len(step.get("content") or "") // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _base(kind: str, model: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-fake-{time.monotonic_ns()}", "object": kind, "created": int(time.time()),
            "model": model}


def _completion(step: Step, request: dict[str, Any], model: str) -> dict[str, Any]:
    """A ``chat.completion`` object for a scripted step."""
    message = {"role": "assistant", "content": step.get("content", "ok")}
    choice = {"index": 0, "message": message, "finish_reason": step.get("finish_reason", "stop"), "logprobs": None}
    return {**_base("chat.completion", step.get("model", model)), "choices": [choice],
            "usage": _usage(step, request)}


def _chunks(step: Step, request: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed answer: role, content in pieces, finish, usage."""
    base = _base("chat.completion.chunk", step.get("model", model))
    content = step.get("content", "ok") or ""
    size = max(1, -(-len(content) // 4))
    deltas = [{"role": "assistant", "content": ""}] + [{"content": content[i:i + size]}
                                                       for i in range(0, len(content), size)]
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": step.get("finish_reason", "stop")}]})
    if (request.get("stream_options") or {}).get("include_usage"):
        chunks = [{**c, "usage": None} for c in chunks]
        chunks.append({**base, "choices": [], "usage": _usage(step, request)})
    return chunks
