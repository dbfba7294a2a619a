"""The provider client and the CLI (`llmp serve`, `llmp logs`, `llmp chat --provider`) against real servers."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from llm_playground.cli.generate import ChatSession
from llm_playground.errors import InvalidParameter, ProviderError
from llm_playground.generate import SamplingParams
from llm_playground.generate.chat import LocalChatModel
from llm_playground.serve import BackgroundServer, LogRecord, ProviderClient, RemoteChatModel, RequestLog, create_app
from llm_playground.serve.client import normalize_base_url
from llm_playground.serve.server import check_bind

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def llmp(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "LLMP_THREADS": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "llm_playground.cli.main", *args], input=stdin,
                          capture_output=True, text=True, env=full_env, timeout=300)


@pytest.fixture(scope="module")
def server(smollm2):
    with BackgroundServer(create_app({"smollm2": smollm2}, api_key="k3y")) as running:
        yield running


@pytest.mark.slow
def test_client_streams_and_chats_with_our_server(server):
    with ProviderClient(server.url, api_key="k3y") as client:
        assert client.base_url == f"{server.url}/v1" and client.models() == ["smollm2"]
        stream = client.stream_chat("smollm2", QUESTION, temperature=0, max_tokens=20)
        deltas = list(stream)
        assert len(deltas) > 3 and "Paris" in "".join(deltas)
        reply = stream.reply
        assert reply.text == "".join(deltas) and reply.finish_reason == "stop"
        assert reply.usage["completion_tokens"] >= len(deltas) and 0 < reply.ttft_ms <= reply.total_ms
        assert client.chat("smollm2", QUESTION, temperature=0, max_tokens=20).text == reply.text


@pytest.mark.slow
def test_remote_chat_session_answers_as_the_local_engine(server, smollm2):
    params = SamplingParams(temperature=0, max_new_tokens=24)
    local, remote = ChatSession(LocalChatModel(smollm2), params, None), ChatSession(
        RemoteChatModel(ProviderClient(server.url, "k3y"), "smollm2"), params, None)
    for text in ("What is the capital of France?", "And of Italy?"):
        assert "".join(remote.send(text)) == "".join(local.send(text))
    assert remote.messages == local.messages
    assert "tokens" in remote.stats() and "smollm2 at http://127.0.0.1" in remote.stats()


@pytest.mark.slow
def test_refusals_become_provider_errors(server):
    with pytest.raises(ProviderError) as caught:
        ProviderClient(server.url, api_key="wrong").chat("smollm2", QUESTION)
    assert "401" in caught.value.message and "--api-key-env" in caught.value.fix
    with pytest.raises(ProviderError) as caught:
        ProviderClient(server.url, api_key="k3y").chat("nope", QUESTION)
    assert "404" in caught.value.message and "model" in caught.value.fix


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Refuses the first requests with 503 and 429, then streams a two-chunk answer."""

    failures = [503, 429]
    attempts = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).attempts += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).attempts <= len(self.failures):
            body = json.dumps({"error": {"message": "busy"}}).encode()
            self.send_response(self.failures[type(self).attempts - 1])
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for delta in ("Hel", "lo"):
            chunk = {"choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n')
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky():
    _Flaky.attempts = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_retries_429_and_5xx_then_streams(flaky):
    reply = ProviderClient(flaky, max_retries=2, backoff_s=0.01).chat("any", QUESTION)
    assert reply.text == "Hello" and reply.finish_reason == "stop" and _Flaky.attempts == 3
    assert reply.completion_tokens == 2  # no usage sent: counted by chunks


def test_gives_up_after_its_retries(flaky):
    with pytest.raises(ProviderError) as caught:
        ProviderClient(flaky, max_retries=1, backoff_s=0.01).chat("any", QUESTION)
    assert "429" in caught.value.message and _Flaky.attempts == 2


def test_unreachable_provider_is_one_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(ProviderError) as caught:
        ProviderClient(f"http://127.0.0.1:{port}", max_retries=1, backoff_s=0.01).chat("any", QUESTION)
    assert "cannot reach" in caught.value.message and time.perf_counter() - start < 5


def test_base_urls():
    assert normalize_base_url("http://localhost:11434") == "http://localhost:11434/v1"
    assert normalize_base_url("localhost:8000/") == "http://localhost:8000/v1"
    assert normalize_base_url("https://api.openai.com/v1/") == "https://api.openai.com/v1"
    with pytest.raises(ProviderError):
        normalize_base_url("ftp://example.com")


@pytest.mark.slow
def test_llmp_chat_with_a_provider(server):
    run = llmp("chat", "--provider", server.url, "--model", "smollm2", "--api-key-env", "MY_KEY",
               "--temperature", "0", "--max-new-tokens", "20",
               stdin="What is the capital of France?\n/quit\n", env={"MY_KEY": "k3y"})
    assert run.returncode == 0, run.stderr
    assert "assistant> The capital of France is Paris." in run.stdout
    assert "smollm2 at http://127.0.0.1" in run.stderr and "first token" in run.stderr
    refused = llmp("chat", "--provider", server.url, stdin="Hello\n/quit\n", env={"OPENAI_API_KEY": "bad"})
    assert refused.returncode == 0 and "401" in refused.stderr


def test_only_loopback_without_a_key():
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        check_bind(host, None, insecure=False)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.com"):
        with pytest.raises(InvalidParameter):
            check_bind(host, None, insecure=False)
        check_bind(host, "key", insecure=False)
        check_bind(host, None, insecure=True)


def test_serve_refuses_a_public_address_without_a_key():
    run = llmp("serve", "--host", "0.0.0.0", env={"LLMP_API_KEY": ""})
    assert run.returncode == 2 and "refusing to listen on 0.0.0.0 without an API key" in run.stderr


@pytest.mark.slow
def test_llmp_logs_lists_searches_and_exports(tmp_path):
    log = RequestLog(tmp_path / "logs.db")
    assert log.query() == []
    for word in ("apple", "banana", "cherry"):
        log.record(LogRecord("/v1/chat/completions", "smollm2", 200, [{"role": "user", "content": f"say {word}"}],
                             {"seed": 1}, [{"index": 0, "message": {"content": word.upper()}}], "stop", 9, 2,
                             0.1, 50.0, 120.0))
    assert [r.messages[0]["content"] for r in log.query(limit=2)] == ["say cherry", "say banana"]
    env = {"LLMP_HOME": str(tmp_path)}
    listed = llmp("logs", env=env)
    assert listed.returncode == 0 and "say apple" in listed.stdout and "BANANA" in listed.stdout
    exported = json.loads(llmp("logs", "--json", "--search", "an", "--limit", "1", env=env).stdout)
    assert [r["messages"][0]["content"] for r in exported] == ["say banana"]
    assert exported[0]["completion_tokens"] == 2 and exported[0]["params"] == {"seed": 1}


@pytest.mark.slow
def test_llmp_serve_end_to_end(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "LLMP_THREADS": "1", "LLMP_HOME": str(tmp_path), "LLMP_API_KEY": ""}
    process = subprocess.Popen([sys.executable, "-m", "llm_playground.cli.main", "serve", "--port", str(port)],
                               env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        reply = ProviderClient(f"http://127.0.0.1:{port}").chat("smollm2", QUESTION, temperature=0, max_tokens=12)
        assert "Paris" in reply.text
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert "serving smollm2 on" in process.stderr.read()
    exported = json.loads(llmp("logs", "--json", env={"LLMP_HOME": str(tmp_path)}).stdout)
    assert exported[0]["messages"] == QUESTION and "Paris" in exported[0]["output"][0]["text"]
