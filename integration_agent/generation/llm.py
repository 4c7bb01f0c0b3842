"""The LLM boundary: one method, ``complete``, in front of any OpenAI-compatible chat endpoint.

    LLM                  the protocol the builder depends on
    +-- OpenAICompatible the real one (the ``openai`` client, imported only when constructed)
    +-- ScriptedLLM      the fake for unit tests: answers from a list

Every call runs under one absolute deadline (a ``time.monotonic()`` value). The openai client's own
retries are off: this module retries 429 (honouring ``Retry-After``), 500/502/503/504 and connection
errors itself, so a timeout means the deadline and not "a timeout per attempt times the retries".

Failures raise :class:`LLMError`, whose ``kind`` says what went wrong:

    timeout     the deadline passed (a hanging server, or a retry that would not fit before it)
    http        an HTTP error that retrying will not fix (``status`` set), or a malformed answer
    truncated   the answer hit the token limit (finish_reason "length")
    connection  the server could not be reached, after the retries
    empty       the answer had no content
    oversized   a streamed answer grew past ``max_bytes``: refused while streaming, never held whole

Messages never contain what was sent to the model: prompts can hold host facts and knowledge excerpts,
and exceptions end up in logs and journals.
"""

from __future__ import annotations

import copy
import email.utils
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from ..errors import MissingExtra

log = logging.getLogger(__name__)

ErrorKind = Literal["timeout", "http", "truncated", "connection", "empty", "oversized"]
MAX_ANSWER_BYTES = 262_144  # the policy gate's IA001 limit (policy.MAX_BYTES)
StructuredOutput = Literal["json_schema", "json_object"]
Messages = list[dict[str, str]]

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
FIRST_BACKOFF = 0.5  # seconds; doubles after each failed attempt
# How long past the deadline we still wait for a request that is about to time out by itself.
DEADLINE_GRACE = 0.2

T = TypeVar("T")


@dataclass(frozen=True)
class Completion:
    """One answer of the model, with what it cost. Token counts are 0 when the server did not say."""

    content: str
    finish_reason: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    attempts: int


def load_openai() -> ModuleType:
    """The ``openai`` module (extra ``generate``), or :class:`MissingExtra` saying how to install it.

    Imported here, never at module level: importing intagent must stay cheap and work without it."""
    try:
        import openai
    except ImportError as exc:
        raise MissingExtra("generation (a model at an OpenAI-compatible endpoint)", "the Python package openai",
                           "generate") from exc
    return openai


class LLMError(Exception):
    """The model gave no usable answer; ``kind`` says why (see the module docstring)."""

    def __init__(self, kind: ErrorKind, message: str, *, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.attempts = attempts


class LLM(Protocol):
    """Anything that answers chat messages before an absolute ``time.monotonic()`` deadline."""

    def complete(self, messages: Messages, *, schema: dict[str, Any] | None, deadline: float) -> Completion:
        """Answer ``messages``; with a JSON schema the answer is JSON meant to match it."""
        ...


@dataclass
class _Answer:
    """What one successful HTTP exchange returned, before it is judged."""

    content: str
    finish_reason: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class OpenAICompatible:
    """The LLM behind an OpenAI-compatible ``/v1/chat/completions`` (OpenAI, vLLM, Ollama, llama.cpp...).

    Structured output asks for ``json_schema`` first; a server that rejects it with a 400 about
    ``response_format`` gets ``json_object`` from then on (``structured_output`` tells which is in use).
    In ``json_object`` mode the server does not see the schema, so the prompt must describe it.
    """

    def __init__(self, base_url: str, api_key: str | None, model: str, *, stream: bool = False,
                 max_attempts: int = 4, temperature: float = 0.0, max_bytes: int = MAX_ANSWER_BYTES) -> None:
        self._openai = openai = load_openai()
        self._client = openai.OpenAI(base_url=base_url, max_retries=0,
                                     api_key=api_key or os.environ.get("OPENAI_API_KEY") or "unused")
        self.base_url = base_url
        self.model = model
        self.stream = stream
        self.max_attempts = max(1, max_attempts)
        self.temperature = temperature
        self.max_bytes = max_bytes
        self.structured_output: StructuredOutput = "json_schema"

    def complete(self, messages: Messages, *, schema: dict[str, Any] | None, deadline: float) -> Completion:
        """Ask the model, retrying what is worth retrying, and give up with :class:`LLMError`."""
        started = time.monotonic()
        attempts = failures = 0
        while True:
            if time.monotonic() >= deadline:
                raise LLMError("timeout", f"deadline reached before asking {self._where}", attempts=attempts)
            attempts += 1
            try:
                answer = _before_deadline(lambda cancel: self._exchange(messages, schema, deadline, cancel),
                                          deadline)
            except LLMError as error:
                error.attempts = attempts
                raise
            except self._openai.APIError as error:
                if self._falls_back(error, schema):
                    continue
                failures += 1
                try:
                    delay = self._retry_delay(error, messages, failures, deadline, attempts)
                except LLMError as failure:
                    # Hide the openai error from tracebacks: its text holds the server's raw answer.
                    raise failure from None
                log.debug("LLM attempt %d failed (%s); retrying in %.1f s", attempts, type(error).__name__, delay)
                time.sleep(delay)
                continue
            return _judge(answer, time.monotonic() - started, attempts)

    @property
    def _where(self) -> str:
        return urlsplit(self.base_url).netloc or self.base_url

    def _request(self, messages: Messages, schema: dict[str, Any] | None) -> dict[str, Any]:
        """The keyword arguments of one chat completion request."""
        request: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if schema is not None and self.structured_output == "json_schema":
            request["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": "plan", "schema": schema, "strict": False}}
        elif schema is not None:
            request["response_format"] = {"type": "json_object"}
        if self.stream:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}
        return request

    def _exchange(self, messages: Messages, schema: dict[str, Any] | None, deadline: float,
                  cancel: threading.Event) -> _Answer:
        """One HTTP request; openai errors propagate, a malformed answer is an ``http`` LLMError."""
        timeout = max(0.01, deadline - time.monotonic())
        try:
            response = self._client.chat.completions.create(**self._request(messages, schema), timeout=timeout)
        except ValueError:  # a 200 whose body is not JSON
            raise LLMError("http", f"{self._where} answered with a malformed body", status=200) from None
        if self.stream:
            return self._read_stream(response, deadline, cancel)
        choices = getattr(response, "choices", None)
        if not choices:
            raise LLMError("http", f"{self._where} answered without a completion", status=200)
        usage = getattr(response, "usage", None)
        return _Answer(choices[0].message.content or "", choices[0].finish_reason or "unknown",
                       response.model or self.model, _tokens(usage, "prompt_tokens"),
                       _tokens(usage, "completion_tokens"))

    def _read_stream(self, stream: Any, deadline: float, cancel: threading.Event) -> _Answer:
        """Accumulate the deltas of a streamed answer, stopping at the deadline."""
        answer = _Answer("", "unknown", self.model)
        parts: list[str] = []
        size = 0
        with stream:
            for chunk in stream:
                if cancel.is_set() or time.monotonic() >= deadline:
                    raise LLMError("timeout", f"deadline reached while {self._where} was streaming")
                answer.model = chunk.model or answer.model
                if chunk.usage:
                    answer.prompt_tokens = _tokens(chunk.usage, "prompt_tokens")
                    answer.completion_tokens = _tokens(chunk.usage, "completion_tokens")
                for choice in chunk.choices[:1]:
                    parts.append(choice.delta.content or "")
                    size += len(parts[-1].encode("utf-8", errors="surrogatepass"))
                    if size > self.max_bytes:
                        raise LLMError("oversized", f"the streamed answer passed {self.max_bytes} bytes; "
                                                    "refused before it was read whole")
                    answer.finish_reason = choice.finish_reason or answer.finish_reason
        answer.content = "".join(parts)
        return answer

    def _falls_back(self, error: Exception, schema: dict[str, Any] | None) -> bool:
        """Switch to ``json_object`` when the server says it cannot do ``json_schema``."""
        if schema is None or self.structured_output != "json_schema":
            return False
        if getattr(error, "status_code", None) not in (400, 422):
            return False
        said = f"{getattr(error, 'message', '')} {getattr(error, 'body', '')}".lower()
        if "response_format" not in said and "json_schema" not in said:
            return False
        log.info("%s does not take json_schema; using json_object from now on", self._where)
        self.structured_output = "json_object"
        return True

    def _retry_delay(self, error: Exception, messages: Messages, failures: int, deadline: float,
                     attempts: int) -> float:
        """Seconds to wait before the next attempt, or raise when retrying is pointless or too late."""
        openai = self._openai
        status = getattr(error, "status_code", None)
        if isinstance(error, openai.APITimeoutError):
            raise LLMError("timeout", f"{self._where} did not answer before the deadline", attempts=attempts)
        if isinstance(error, openai.APIConnectionError):
            kind: ErrorKind = "connection"
            what = f"cannot reach {self._where}"
        elif status == 429 or status in RETRYABLE_STATUS:
            kind = "http"
            what = f"{self._where} answered HTTP {status}{_server_detail(error, messages)}"
        else:
            raise LLMError("http", f"{self._where} answered HTTP {status or '?'}{_server_detail(error, messages)}",
                           status=status, attempts=attempts)
        if failures >= self.max_attempts:
            raise LLMError(kind, f"{what} (gave up after {failures} attempts)", status=status, attempts=attempts)
        delay = _retry_after(error) if status == 429 else None
        delay = FIRST_BACKOFF * 2 ** (failures - 1) if delay is None else delay
        if time.monotonic() + delay >= deadline:
            raise LLMError("timeout", f"{what}; the next try ({delay:.1f} s) would pass the deadline",
                           status=status, attempts=attempts)
        return delay


def _before_deadline(work: Callable[[threading.Event], T], deadline: float) -> T:
    """Run ``work`` in a daemon thread and stop waiting for it shortly after the deadline.

    httpx timeouts bound each read, not the whole request: a server that streams a few chunks and then
    stalls, or trickles bytes, would otherwise hold us far past the deadline. An abandoned request is
    told to stop through the event and ends at its own read timeout at the latest.
    """
    done = threading.Event()
    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work(cancel)
        except BaseException as error:  # handed over to the waiting thread as is
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=run, name="llm-request", daemon=True).start()
    if not done.wait(max(0.0, deadline - time.monotonic()) + DEADLINE_GRACE):
        cancel.set()
        raise LLMError("timeout", "no answer before the deadline")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _judge(answer: _Answer, seconds: float, attempts: int) -> Completion:
    """Turn an answer into a Completion, or raise when it is cut off or empty."""
    if answer.finish_reason == "length":
        raise LLMError("truncated", f"the answer hit the token limit after {answer.completion_tokens} tokens",
                       attempts=attempts)
    if not answer.content.strip():
        raise LLMError("empty", f"the answer had no content (finish_reason {answer.finish_reason})",
                       attempts=attempts)
    return Completion(answer.content, answer.finish_reason, answer.model, answer.prompt_tokens,
                      answer.completion_tokens, seconds, attempts)


def _tokens(usage: Any, name: str) -> int:
    return int(getattr(usage, name, 0) or 0)


def _retry_after(error: Exception) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``Retry-After`` seconds or date)."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers.get(name, "")) / scale)
        except ValueError:
            pass
    try:
        when = email.utils.parsedate_to_datetime(headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _server_detail(error: Exception, messages: Messages, limit: int = 200) -> str:
    """The server's own error message, shortened, and withheld if it quotes what we sent."""
    body = getattr(error, "body", None)
    text = body.get("message") if isinstance(body, dict) else body
    if not isinstance(text, str) or not text.strip():
        return ""
    if _quotes(text, messages):
        return " (its message quotes the request and is withheld)"
    text = " ".join(text.split())
    return ": " + (text if len(text) <= limit else text[:limit] + "...")


def _quotes(text: str, messages: Messages, window: int = 24) -> bool:
    """Whether ``text`` contains any ``window`` characters of a message's content in a row."""
    seen = {text[i:i + window] for i in range(max(1, len(text) - window + 1))}
    for message in messages:
        content = str(message.get("content") or "")
        if len(content) < window:
            if len(content) >= 6 and content in text:
                return True
        elif any(content[i:i + window] in seen for i in range(len(content) - window + 1)):
            return True
    return False


@dataclass(frozen=True)
class ScriptedCall:
    """What a :class:`ScriptedLLM` was asked."""

    messages: Messages
    schema: dict[str, Any] | None
    deadline: float


class ScriptedLLM:
    """The fake LLM for unit tests: returns (or raises) the scripted items in order.

    A plain string is shorthand for a completed answer with that content.
    """

    def __init__(self, script: Iterable[Completion | Exception | str]) -> None:
        self.script = list(script)
        self.calls: list[ScriptedCall] = []

    @property
    def messages(self) -> list[Messages]:
        """The messages of each call, in order."""
        return [call.messages for call in self.calls]

    def complete(self, messages: Messages, *, schema: dict[str, Any] | None, deadline: float) -> Completion:
        """Record the call and play the next item of the script."""
        self.calls.append(ScriptedCall(copy.deepcopy(messages), schema, deadline))
        if not self.script:
            raise AssertionError(f"ScriptedLLM: no answer left for call {len(self.calls)}")
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, str):
            return Completion(item, "stop", "scripted", 0, 0, 0.0, 1)
        return item
