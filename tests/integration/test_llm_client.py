"""OpenAICompatible against a real HTTP server on loopback (tests/fakes/openai_server.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import traceback

import pytest

from integration_agent.generation.llm import LLMError, OpenAICompatible
from tests.conftest import REPO
from tests.fakes.openai_server import FakeOpenAI

CANARY = "canary-" + os.urandom(8).hex()
MESSAGES = [{"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": f"Install the agent with license {CANARY} on debian-12."}]
SCHEMA = {"type": "object", "properties": {"integration": {"type": "string"}}, "required": ["integration"]}


def _client(server: FakeOpenAI, **options) -> OpenAICompatible:
    return OpenAICompatible(server.base_url, None, "fake-model", **options)


def _ask(client: OpenAICompatible, *, seconds: float = 10, schema: dict | None = None):
    return client.complete(MESSAGES, schema=schema, deadline=time.monotonic() + seconds)


def _failure(client: OpenAICompatible, *, seconds: float = 10, schema: dict | None = None) -> LLMError:
    with pytest.raises(LLMError) as caught:
        _ask(client, seconds=seconds, schema=schema)
    _assert_no_canary(caught.value)
    return caught.value


def _assert_no_canary(error: BaseException) -> None:
    shown = "".join(traceback.format_exception(error)) + repr(error.args)
    assert CANARY not in shown


def test_plain_answer_records_tokens_and_sends_the_messages():
    with FakeOpenAI([{"content": "hello there", "prompt_tokens": 10, "completion_tokens": 20}]) as server:
        completion = _ask(_client(server))
    assert completion.content == "hello there"
    assert (completion.prompt_tokens, completion.completion_tokens) == (10, 20)
    assert completion.finish_reason == "stop" and completion.model == "fake-model"
    assert completion.attempts == 1 and 0 < completion.seconds < 5
    (request,) = server.chat_requests
    assert request.body["messages"] == MESSAGES and request.body["temperature"] == 0.0
    assert "response_format" not in request.body and not request.body.get("stream")


def test_streamed_answer_is_accumulated():
    text = '{"integration": "node_exporter", "notes": "streamed in several chunks"}'
    with FakeOpenAI([{"content": text, "prompt_tokens": 7, "completion_tokens": 9}]) as server:
        completion = _ask(_client(server, stream=True))
    assert completion.content == text
    assert (completion.prompt_tokens, completion.completion_tokens) == (7, 9)
    assert server.chat_requests[0].body["stream"] is True


def test_schema_is_sent_as_json_schema_response_format():
    with FakeOpenAI([{"content": '{"integration": "x"}'}]) as server:
        client = _client(server)
        _ask(client, schema=SCHEMA)
    response_format = server.chat_requests[0].body["response_format"]
    assert response_format == {"type": "json_schema",
                               "json_schema": {"name": "plan", "schema": SCHEMA, "strict": False}}
    assert client.structured_output == "json_schema"


def test_falls_back_to_json_object_once_and_remembers_it():
    with FakeOpenAI([{"content": '{"integration": "a"}'}, {"content": '{"integration": "b"}'}],
                    reject_json_schema=True) as server:
        client = _client(server)
        first = _ask(client, schema=SCHEMA)
        second = _ask(client, schema=SCHEMA)
    assert (first.content, second.content) == ('{"integration": "a"}', '{"integration": "b"}')
    assert client.structured_output == "json_object"
    kinds = [r.body["response_format"]["type"] for r in server.chat_requests]
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert first.attempts == 2 and second.attempts == 1


def test_rate_limit_waits_for_retry_after():
    script = [{"status": 429, "headers": {"Retry-After": "1"},
               "body": {"error": {"message": "slow down", "type": "rate_limit"}}},
              {"content": "done"}]
    with FakeOpenAI(script) as server:
        started = time.monotonic()
        completion = _ask(_client(server))
        elapsed = time.monotonic() - started
    assert completion.content == "done" and completion.attempts == 2
    assert elapsed >= 1.0


def test_rate_limit_that_does_not_fit_before_the_deadline_is_a_timeout_at_once():
    script = [{"status": 429, "headers": {"Retry-After": "30"}}]
    with FakeOpenAI(script) as server:
        started = time.monotonic()
        error = _failure(_client(server), seconds=5)
    assert error.kind == "timeout" and time.monotonic() - started < 2


def test_a_hanging_server_times_out_at_the_deadline():
    with FakeOpenAI([{"hang": 30}]) as server:
        deadline = time.monotonic() + 1.0
        with pytest.raises(LLMError) as caught:
            _client(server).complete(MESSAGES, schema=None, deadline=deadline)
        assert time.monotonic() <= deadline + 1.5
    assert caught.value.kind == "timeout"
    _assert_no_canary(caught.value)


def test_a_stream_that_stalls_midway_times_out_at_the_deadline():
    # A chunk at 2 s, then silence: a read timeout alone would fire only 3 s after that chunk.
    with FakeOpenAI([{"content": "a long answer that never finishes", "chunk_delay": [2, 30]}]) as server:
        deadline = time.monotonic() + 3.0
        with pytest.raises(LLMError) as caught:
            _client(server, stream=True).complete(MESSAGES, schema=None, deadline=deadline)
        assert time.monotonic() <= deadline + 1.0
    assert caught.value.kind == "timeout"


def test_a_stream_that_trickles_past_the_deadline_times_out():
    with FakeOpenAI([{"content": "x" * 40, "chunk_delay": 0.4}]) as server:
        deadline = time.monotonic() + 1.0
        with pytest.raises(LLMError) as caught:
            _client(server, stream=True).complete(MESSAGES, schema=None, deadline=deadline)
        assert time.monotonic() <= deadline + 1.0
    assert caught.value.kind == "timeout"


def test_length_finish_is_truncated():
    with FakeOpenAI([{"content": '{"integration": "cut', "finish_reason": "length"}]) as server:
        assert _failure(_client(server)).kind == "truncated"


def test_empty_answer_is_empty():
    with FakeOpenAI([{"content": ""}, {"content": "   ", "finish_reason": "stop"}]) as server:
        client = _client(server)
        assert _failure(client).kind == "empty"
        assert _failure(client).kind == "empty"


def test_malformed_body_is_an_http_error():
    with FakeOpenAI([{"raw": "not json at all"}]) as server:
        error = _failure(_client(server))
    assert error.kind == "http" and error.status == 200


def test_server_error_is_retried():
    with FakeOpenAI([{"status": 500}, {"content": "recovered"}]) as server:
        completion = _ask(_client(server))
    assert completion.content == "recovered" and completion.attempts == 2
    assert len(server.chat_requests) == 2


def test_server_errors_give_up_after_max_attempts():
    with FakeOpenAI([{"status": 503}, {"status": 502}, {"content": "too late"}]) as server:
        error = _failure(_client(server, max_attempts=2))
    assert (error.kind, error.status, error.attempts) == ("http", 502, 2)
    assert len(server.chat_requests) == 2


def test_unauthorized_is_not_retried():
    body = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
    with FakeOpenAI([{"status": 401, "body": body}, {"content": "never asked"}]) as server:
        error = _failure(_client(server))
    assert (error.kind, error.status, error.attempts) == ("http", 401, 1)
    assert "Incorrect API key" in str(error)
    assert len(server.chat_requests) == 1


def test_unreachable_server_is_a_connection_error_after_retries():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OpenAICompatible(f"http://127.0.0.1:{port}/v1", None, "fake-model", max_attempts=2)
    error = _failure(client)
    assert error.kind == "connection" and error.attempts == 2


def test_error_messages_never_quote_what_was_sent():
    echo = {"error": {"message": f"invalid prompt: {MESSAGES[1]['content']}", "type": "invalid_request_error"}}
    script = [{"status": 400, "body": echo},
              {"status": 422, "body": {"error": {"message": str(MESSAGES)}}},
              {"status": 429, "headers": {"Retry-After": "60"}, "body": echo},
              {"content": CANARY, "finish_reason": "length"},
              {"raw": f"<html>{CANARY}</html>"},
              {"hang": 30}]
    with FakeOpenAI(script) as server:
        client = _client(server, max_attempts=2)
        errors = [_failure(client, seconds=3) for _ in script]
    assert [e.kind for e in errors] == ["http", "http", "timeout", "truncated", "http", "timeout"]
    assert "withheld" in str(errors[0])


def test_api_key_defaults_to_the_environment_then_to_unused(monkeypatch):
    with FakeOpenAI([{"content": "a"}, {"content": "b"}, {"content": "c"}]) as server:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        _ask(_client(server))
        monkeypatch.setenv("OPENAI_API_KEY", "from-env")
        _ask(_client(server))
        _ask(OpenAICompatible(server.base_url, "given", "fake-model"))
    keys = [r.headers["authorization"] for r in server.chat_requests]
    assert keys == ["Bearer unused", "Bearer from-env", "Bearer given"]


def test_importing_the_module_does_not_import_openai():
    code = "import sys, integration_agent.generation.llm; print('openai' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False"


def test_an_oversized_streamed_answer_is_cut_off_while_streaming():
    # 4 chunks of 100 KB; the third only comes after 30 s. Refusing at the second chunk (past 150 KB) is
    # the only way to answer quickly: reading the answer whole would wait for the deadline.
    with FakeOpenAI([{"content": "x" * 400_000, "chunk_delay": [0, 0, 30]}]) as server:
        started = time.monotonic()
        error = _failure(_client(server, stream=True, max_bytes=150_000), seconds=20)
        assert time.monotonic() - started < 10
    assert error.kind == "oversized" and "150000 bytes" in str(error)
