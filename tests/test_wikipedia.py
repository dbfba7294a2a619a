"""The Wikipedia source against a local HTTP server that answers like the MediaWiki Action API
(formatversion=2 shapes): rate limit, retries on 429/5xx with Retry-After, timeouts, resume. No network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llm_playground.data import CollectRequest, WikipediaRequest, collect
from llm_playground.data.wikipedia import USER_AGENT, WikipediaClient, page_path
from llm_playground.errors import InputError, InvalidParameter
from llm_playground.workspace import Workspace

PAGES = {
    "Alan Turing": "Alan Mathison Turing was an English mathematician and computer scientist.\n\n\n== Early life ==\n"
                   "Turing was born in Maida Vale, London.",
    "Ada Lovelace": "Augusta Ada King, Countess of Lovelace, was an English mathematician and writer.",
    "Grace Hopper": "Grace Brewster Hopper was an American computer scientist and rear admiral.",
    "Edsger W. Dijkstra": "Edsger Wybe Dijkstra was a Dutch computer scientist and programmer.",
    "Flaky 429": "A page whose first request is refused with 429 Too Many Requests.",
    "Flaky 500": "A page whose first request fails with 500 Internal Server Error.",
    "Slow": "A page whose first answer comes later than the client's timeout.",
    "Empty": "",
}
CATEGORY = ["Alan Turing", "Ada Lovelace", "Grace Hopper", "Edsger W. Dijkstra"]


class FakeWikipedia(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        state = self.server.state  # type: ignore[attr-defined]
        with state["lock"]:
            state["requests"].append({"path": url.path, "params": params, "agent": self.headers.get("User-Agent"),
                                      "at": time.monotonic()})
            key = params.get("titles") or params.get("list", "")
            state["seen"][key] += 1
            attempt = state["seen"][key]
        if url.path != "/w/api.php" or params.get("action") != "query" or params.get("format") != "json":
            return self._send(400, {"error": {"code": "badrequest", "info": "not an API query"}})
        title = params.get("titles")
        if title in ("Flaky 429", "Always 429") and (attempt == 1 or title == "Always 429"):
            return self._send(429, {"error": {"code": "ratelimited"}}, {"Retry-After": state["retry_after"]})
        if title in ("Flaky 500", "Always 503") and (attempt == 1 or title == "Always 503"):
            return self._send(503 if title == "Always 503" else 500, {"error": {"code": "internal"}})
        if title == "Slow" and attempt == 1:
            time.sleep(1.0)
        if params.get("prop") == "extracts":
            return self._send(200, self._extract(title or ""))
        if params.get("list") == "random":
            count = int(params["rnlimit"])
            return self._send(200, {"batchcomplete": True, "continue": {"rncontinue": "0.5|x", "continue": "-||"},
                                    "query": {"random": [{"id": i, "ns": 0, "title": t}
                                                         for i, t in enumerate(CATEGORY[:count])]}})
        if params.get("list") == "categorymembers":
            return self._send(200, self._category(params))
        self._send(200, {"error": {"code": "badvalue", "info": "Unrecognized value for parameter"}})

    def _extract(self, title: str) -> dict:
        if title not in PAGES:
            return {"batchcomplete": True, "query": {"pages": [{"ns": 0, "title": title, "missing": True}]}}
        return {"batchcomplete": True, "query": {"pages": [
            {"pageid": 1 + list(PAGES).index(title), "ns": 0, "title": title, "extract": PAGES[title]}]}}

    def _category(self, params: dict) -> dict:
        if params["cmtitle"] != "Category:Computer scientists":
            return {"batchcomplete": True, "query": {"categorymembers": []}}
        start = int(params.get("cmcontinue", "page|0").split("|")[1])
        batch = CATEGORY[start:start + min(2, int(params["cmlimit"]))]  # two a page, to exercise continuation
        answer: dict = {"query": {"categorymembers": [{"pageid": 1, "ns": 0, "title": t} for t in batch]}}
        if start + 2 < len(CATEGORY):
            answer["continue"] = {"cmcontinue": f"page|{start + 2}", "continue": "-||"}
        return answer

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeWikipedia)
    server.state = {"lock": threading.Lock(), "requests": [], "seen": Counter(), "retry_after": "1"}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/w/api.php"


def client_for(server, waits: list[float] | None = None, **options) -> WikipediaClient:
    sleep = waits.append if waits is not None else time.sleep
    return WikipediaClient("en", url_of(server), requests_per_second=1000, backoff_s=0.05, sleep=sleep, **options)


def extract_requests(server, title: str) -> int:
    return sum(1 for r in server.state["requests"] if r["params"].get("titles") == title)


@pytest.mark.slow
def test_collect_titles_then_resume_through_the_cli(api, tmp_path):
    env = {**os.environ, "LLMP_HOME": str(tmp_path), "LLMP_WIKIPEDIA_API": url_of(api), "COLUMNS": "200"}
    command = [sys.executable, "-m", "llm_playground.cli.main", "data", "collect", "--source", "wikipedia",
               "--titles", "Alan Turing|Ada Lovelace", "--titles", "No such page", "--titles", "Flaky 429", "--json"]
    started = time.monotonic()
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    manifest = json.loads(first.stdout)
    assert manifest["documents"] == 3
    assert manifest["sources"] == [{"source": "wikipedia", "lang": "en", "titles": [
        "Alan Turing", "Ada Lovelace", "No such page", "Flaky 429"], "api": url_of(api), "fetched": 3, "resumed": 0,
        "documents": 3}]
    assert manifest["skipped"] == [{"path": "wikipedia:No such page", "reason": "no such page"}]
    assert extract_requests(api, "Flaky 429") == 2 and time.monotonic() - started >= 1.0  # waited Retry-After: 1
    requests = api.state["requests"]
    assert {r["agent"] for r in requests} == {USER_AGENT} and USER_AGENT.startswith("llm-playground/0.1 (+https://")
    assert all(r["params"]["explaintext"] == "1" and r["params"]["formatversion"] == "2" for r in requests)
    folder = tmp_path / "data" / "raw" / "wikipedia" / "en"
    assert sorted(p.name for p in folder.iterdir()) == ["Ada Lovelace.txt", "Alan Turing.txt", "Flaky 429.txt"]
    corpus = (tmp_path / "data" / "raw" / "corpus.txt").read_text()
    assert corpus.startswith("Alan Turing\nAlan Mathison Turing was an English mathematician and computer scientist."
                             "\n== Early life ==\nTuring was born")
    before = len(requests)
    second = subprocess.run(command[:-1], capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "3 documents (0 fetched, 3 already saved)" in second.stdout and "No such page: no such page" in second.stderr
    assert len(api.state["requests"]) == before + 1  # only the missing page is asked for again


def test_429_honours_retry_after_and_500_backs_off(api):
    waits: list[float] = []
    api.state["retry_after"] = "7"
    with client_for(api, waits) as client:
        assert client.extract("Flaky 429") == ("Flaky 429", PAGES["Flaky 429"])
        assert 7.0 in waits
        waits.clear()
        assert client.extract("Flaky 500") == ("Flaky 500", PAGES["Flaky 500"])
        assert [w for w in waits if w > 0.01] == [0.05]  # backoff_s * 2**0, then success
    assert extract_requests(api, "Flaky 429") == extract_requests(api, "Flaky 500") == 2


def test_gives_up_after_the_retries_with_exponential_backoff(api):
    waits: list[float] = []
    with client_for(api, waits, retries=3) as client:
        with pytest.raises(InputError, match="kept failing .HTTP 503. after 3"):
            client.extract("Always 503")
    assert [w for w in waits if w > 0.01] == [0.05, 0.1, 0.2] and extract_requests(api, "Always 503") == 4


def test_a_timeout_is_retried(api):
    with client_for(api, timeout_s=0.3) as client:
        assert client.extract("Slow") == ("Slow", PAGES["Slow"])
    assert extract_requests(api, "Slow") == 2


def test_rate_limit_spaces_requests(api):
    with WikipediaClient("en", url_of(api), requests_per_second=20) as client:
        for title in CATEGORY:
            client.extract(title)
    times = [r["at"] for r in api.state["requests"]]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # 20 a second: 50 ms apart when sent; the server's clock sees them a few ms early or late (0.143 s in
    # all once, under load), while without the limit they would come ~1 ms apart.
    assert len(times) == 4 and min(gaps) >= 0.035 and sum(gaps) >= 0.13


def test_random_and_category_with_continuation(api, tmp_path):
    workspace = Workspace(tmp_path)
    request = WikipediaRequest(random=3, api_url=url_of(api), requests_per_second=1000)
    manifest = collect(workspace, CollectRequest(sources=["wikipedia"], wikipedia=request))
    assert manifest["documents"] == 3 and manifest["sources"][0]["random"] == 3
    by_category = WikipediaRequest(category="Computer scientists", api_url=url_of(api), requests_per_second=1000)
    manifest = collect(workspace, CollectRequest(sources=["wikipedia"], wikipedia=by_category))
    assert manifest["documents"] == 4 and manifest["sources"][0]["fetched"] == 1  # three saved by the random run
    assert manifest["sources"][0]["resumed"] == 3
    calls = [r["params"] for r in api.state["requests"] if r["params"].get("list") == "categorymembers"]
    assert [c.get("cmcontinue") for c in calls] == [None, "page|2"] and calls[0]["cmnamespace"] == "0"
    with pytest.raises(InputError, match="Category:Nothing here has no article pages"):
        collect(workspace, CollectRequest(sources=["wikipedia"], wikipedia=WikipediaRequest(
            category="Nothing here", api_url=url_of(api), requests_per_second=1000)))


def test_empty_extracts_api_errors_and_bad_options(api, tmp_path):
    workspace = Workspace(tmp_path)
    request = WikipediaRequest(titles=["Empty", "Grace Hopper"], api_url=url_of(api), requests_per_second=1000)
    manifest = collect(workspace, CollectRequest(sources=["wikipedia", "shakespeare"], wikipedia=request))
    assert manifest["skipped"] == [{"path": "wikipedia:Empty", "reason": "empty extract"}]
    assert [(s["source"], s["documents"]) for s in manifest["sources"]] == [("wikipedia", 1), ("shakespeare", 38)]
    with client_for(api) as client, pytest.raises(InputError, match="refused the request: badvalue"):
        client.query({"list": "nonsense"})
    with pytest.raises(InputError, match="answered HTTP 400"):
        WikipediaClient("en", url_of(api).replace("/w/api.php", "/elsewhere"), retries=0).query({})
    with pytest.raises(InvalidParameter, match="not a Wikipedia language code"):
        WikipediaClient("en/../x")


def test_page_files_are_safe_and_unique(tmp_path):
    assert page_path(tmp_path, "AC/DC").name == "AC%2FDC.txt"
    assert page_path(tmp_path, "alan_Turing") == page_path(tmp_path, "Alan Turing")
    long_a, long_b = page_path(tmp_path, "x" * 300 + "a"), page_path(tmp_path, "x" * 300 + "b")
    assert long_a != long_b and len(long_a.name.encode()) < 200
    assert Path(long_a).parent == tmp_path
