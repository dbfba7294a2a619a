"""Providers by name and cost estimates, against a fake OpenAI-compatible provider on 127.0.0.1 (no internet)."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

from llm_playground.cli.generate import ChatSession
from llm_playground.errors import InputError
from llm_playground.generate import SamplingParams
from llm_playground.serve import ProviderClient, RemoteChatModel
from llm_playground.serve.providers import PROVIDERS, format_cost, load_prices, resolve

ANSWER = ["The capital ", "of France ", "is Paris."]


class FakeProvider(http.server.ThreadingHTTPServer):
    """Answers every chat with the same streamed words and a fixed usage (1000 prompt, 500 completion tokens),
    like OpenAI's endpoint does with stream_options.include_usage; the key must be sk-test."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> FakeProvider:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.headers.get("Authorization") != "Bearer sk-test":
            payload = json.dumps({"error": {"message": "Incorrect API key provided"}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunks = [{"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]} for word in ANSWER]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        chunks.append({"choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}})
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def fake():
    with FakeProvider() as server:
        yield server


def test_presets_and_urls_resolve():
    assert set(PROVIDERS) == {"openai", "anthropic", "google", "ollama", "vllm", "llama.cpp"}
    assert resolve("anthropic").key_env == "ANTHROPIC_API_KEY"
    assert resolve("Google").key_env == "GEMINI_API_KEY" and "generativelanguage" in resolve("google").base_url
    assert resolve("openai").base_url == "https://api.openai.com/v1"
    assert resolve("ollama").key_env is None
    moved = resolve("openai", base_url="http://127.0.0.1:9/v1", key_env="MY_KEY")
    assert (moved.base_url, moved.key_env, moved.provider) == ("http://127.0.0.1:9/v1", "MY_KEY", "openai")
    assert resolve("http://127.0.0.1:8000").provider is None
    with pytest.raises(InputError, match="unknown provider 'opnai'") as refused:
        resolve("opnai")
    assert "openai, anthropic, google" in refused.value.fix


def test_prices_bundled_dated_and_overridable(tmp_path):
    bundled = load_prices(tmp_path / "absent.json")
    assert bundled.source.startswith("bundled list prices of 20") and bundled.currency == "USD"
    assert bundled.cost("gpt-4o-mini", 1000, 500) == pytest.approx(0.00045)
    assert bundled.price("gpt-4o-mini-2024-07-18") == bundled.price("gpt-4o-mini")  # a dated name: its family
    assert bundled.price("claude-sonnet-4-5-20250929") == {"input": 3.0, "output": 15.0}
    assert bundled.cost("smollm2", 1000, 500) is None
    assert format_cost(0.00045) == "$0.000450" and format_cost(None) == "no price known"

    mine = tmp_path / "prices.json"
    mine.write_text(json.dumps({"models": {"smollm2": {"input": 1.0, "output": 2.0}}}), encoding="utf-8")
    edited = load_prices(mine)
    assert edited.cost("smollm2", 1_000_000, 0) == 1.0 and edited.source == str(mine)
    mine.write_text('{"models": {"x": {"input": "cheap"}}}', encoding="utf-8")
    with pytest.raises(InputError, match="the price of 'x'"):
        load_prices(mine)


def test_a_chat_session_reports_tokens_and_cost_per_answer_and_conversation(fake):
    model = RemoteChatModel(ProviderClient(fake.url, "sk-test"), "gpt-4o-mini")
    session = ChatSession(model, SamplingParams(temperature=0, max_new_tokens=20), None, load_prices(None))
    assert "".join(session.send("What is the capital of France?")) == "".join(ANSWER)
    assert "1000 prompt tokens, ~$0.000450 (conversation ~$0.000450)" in session.stats()
    list(session.send("And of Italy?"))
    assert "(conversation ~$0.000900)" in session.stats()
    sent = fake.requests[-1]["body"]
    assert sent["model"] == "gpt-4o-mini" and [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]


def test_llmp_chat_with_a_preset_by_name(fake, tmp_path):
    def llmp(*args: str, env: dict) -> subprocess.CompletedProcess:
        full = {**os.environ, "LLMP_HOME": str(tmp_path), "COLUMNS": "200", **env}
        return subprocess.run([sys.executable, "-m", "llm_playground.cli.main", "chat", *args],
                              input="What is the capital of France?\n/quit\n", capture_output=True, text=True,
                              env=full, timeout=120)

    run = llmp("--provider", "openai", "--base-url", fake.url, "--model", "gpt-4o-mini",
               env={"OPENAI_API_KEY": "sk-test"})
    assert run.returncode == 0, run.stderr
    assert "assistant> The capital of France is Paris." in run.stdout
    assert "500 tokens" in run.stderr and "~$0.000450" in run.stderr
    assert fake.requests[-1]["auth"] == "Bearer sk-test"

    refused = llmp("--provider", "anthropic", "--base-url", fake.url, "--model", "claude-haiku-4-5",
                   env={"ANTHROPIC_API_KEY": ""})
    assert refused.returncode == 2
    assert "anthropic needs an API key: ANTHROPIC_API_KEY is not set" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_provider_embedder_goes_through_the_provider_client(fake):
    """A body that is not an embeddings list, or a refusal, is a ProviderError line (the one client's)."""
    from llm_playground.errors import ProviderError
    from llm_playground.knowledge import ProviderEmbedder

    with pytest.raises(ProviderError, match="no list of embeddings"):
        ProviderEmbedder(fake.url, "some-embedder", api_key="sk-test").embed(["a text"])
    with pytest.raises(ProviderError, match="answered 401") as refused:
        ProviderEmbedder(fake.url, "some-embedder", api_key="wrong").embed(["a text"])
    assert "API key" in (refused.value.fix or "")
    assert [r["path"] for r in fake.requests] == ["/v1/embeddings", "/v1/embeddings"]
