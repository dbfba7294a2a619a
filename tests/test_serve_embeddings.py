"""POST /v1/embeddings with the official `openai` client against uvicorn on 127.0.0.1, real MiniLM."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest

from llm_playground.knowledge import ProviderEmbedder
from llm_playground.serve import BackgroundServer, create_app

pytestmark = pytest.mark.slow
TEXTS = ["A volcano is an opening in the crust.", "Knead the dough for ten minutes."]


@pytest.fixture(scope="module")
def server(smollm2, minilm):
    with BackgroundServer(create_app({"smollm2": smollm2})) as running:
        yield running


def test_openai_client_gets_the_bundled_vectors(server, minilm):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)
    expected = minilm.embed(TEXTS)
    # unset: the client asks for base64 and decodes it itself; float: JSON numbers; base64 asked: we decode
    for extra in ({}, {"encoding_format": "float"}, {"encoding_format": "base64"}):
        reply = client.embeddings.create(model="all-MiniLM-L6-v2", input=TEXTS, **extra)
        got = np.array([np.frombuffer(base64.b64decode(d.embedding), "<f4") if isinstance(d.embedding, str)
                        else d.embedding for d in reply.data], np.float32)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert [d.index for d in reply.data] == [0, 1] and reply.usage.prompt_tokens == reply.usage.total_tokens > 10
    single = client.embeddings.create(model="all-minilm-l6-v2", input="one text")
    assert len(single.data) == 1 and len(single.data[0].embedding) == 384
    # the provider embedder speaks the same protocol, so a knowledge base can embed through any server
    np.testing.assert_allclose(ProviderEmbedder(server.url, "all-minilm-l6-v2").embed(TEXTS), expected, atol=1e-6)


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"model": "all-minilm-l6-v2", "input": []}, 400, "at least one"),
    ({"model": "all-minilm-l6-v2", "input": ""}, 400, "empty"),
    ({"model": "all-minilm-l6-v2", "input": [[1, 2, 3]]}, 400, "token arrays"),
    ({"model": "all-minilm-l6-v2", "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"model": "all-minilm-l6-v2", "input": "x", "dimensions": 64}, 400, "384"),
    ({"model": "all-minilm-l6-v2", "input": "x", "colour": 1}, 400, "colour"),
    ({"model": "text-embedding-3-small", "input": "x"}, 404, "does not exist"),
    ({"input": "x"}, 400, "model"),
])
def test_bad_requests_get_openai_shaped_4xx(server, body, status, fragment):
    response = httpx.post(f"{server.url}/v1/embeddings", json=body, timeout=30)
    assert response.status_code == status
    assert fragment in response.json()["error"]["message"]
    broken = httpx.post(f"{server.url}/v1/embeddings", content=b"{not json", timeout=30)
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]["message"]
