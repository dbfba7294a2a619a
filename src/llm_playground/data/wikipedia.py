"""Wikipedia through the MediaWiki Action API: plain-text extracts of named, random or category pages.

Polite by construction: a descriptive User-Agent, one request at a time under a rate limit, retries
with exponential backoff on 429 and 5xx (a Retry-After header wins), a timeout on every request.
Each page is saved to its own file as soon as it arrives, so an interrupted run resumes where it stopped.
The API returns one full-page extract per request, hence one request per page.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from llm_playground.data.clean import Document
from llm_playground.data.sources import Progress, Skipped
from llm_playground.errors import InputError, InvalidParameter
from llm_playground.retry import send_with_retries
from llm_playground.workspace import atomic_write_text

DEFAULT_API = "https://{lang}.wikipedia.org/w/api.php"
USER_AGENT = "llm-playground/0.1 (+https://github.com/llm-playground/llm-playground; educational corpus builder)"
MAX_RETRY_AFTER_S = 120.0
# Too many requests, and any server error: worth another try after a wait.
WIKIPEDIA_RETRY_STATUSES = frozenset({429, *range(500, 600)})
_BATCH = 500  # the API's largest list size for ordinary clients
log = logging.getLogger(__name__)


@dataclass
class FetchReport:
    fetched: int = 0
    resumed: int = 0  # already on disk from an earlier run
    skipped: list[Skipped] = field(default_factory=list)


class WikipediaClient:
    def __init__(self, lang: str = "en", api_url: str | None = None, *, requests_per_second: float = 5.0,
                 retries: int = 5, backoff_s: float = 1.0, timeout_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not lang.replace("-", "").isalnum():
            raise InvalidParameter(f"{lang!r} is not a Wikipedia language code", "use a code such as en, de, fr")
        if requests_per_second <= 0:
            raise InvalidParameter("the rate limit must be above 0 requests per second", "use e.g. --rate-limit 5")
        self.lang = lang
        self.url = (api_url or os.environ.get("LLMP_WIKIPEDIA_API") or DEFAULT_API).replace("{lang}", lang)
        self.interval_s, self.retries, self.backoff_s = 1.0 / requests_per_second, retries, backoff_s
        self.sleep = sleep
        self._last_request = -float("inf")
        self._http = httpx.Client(headers={"User-Agent": USER_AGENT}, timeout=timeout_s, follow_redirects=True)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WikipediaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the three queries ----------------------------------------------------------------------------------

    def extract(self, title: str) -> tuple[str, str] | None:
        """(canonical title, plain text) of a page, or None when the page does not exist."""
        data = self.query({"prop": "extracts", "explaintext": 1, "titles": title, "redirects": 1})
        pages = data.get("query", {}).get("pages", [])
        for page in pages.values() if isinstance(pages, dict) else pages:
            if "missing" in page or "invalid" in page:
                return None
            return page.get("title", title), page.get("extract") or ""
        return None

    def random_titles(self, count: int) -> list[str]:
        titles: list[str] = []
        while len(titles) < count:
            data = self.query({"list": "random", "rnnamespace": 0, "rnlimit": min(_BATCH, count - len(titles))})
            fresh = [item["title"] for item in data.get("query", {}).get("random", [])
                     if item["title"] not in titles]
            if not fresh:  # a wiki smaller than the request keeps answering the same pages
                break
            titles.extend(dict.fromkeys(fresh))
        return titles[:count]

    def category_titles(self, category: str, limit: int) -> list[str]:
        if not category.startswith("Category:") and ":" not in category:
            category = f"Category:{category}"
        titles: list[str] = []
        params: dict[str, Any] = {"list": "categorymembers", "cmtitle": category, "cmnamespace": 0,
                                  "cmtype": "page"}
        while len(titles) < limit:
            data = self.query({**params, "cmlimit": min(_BATCH, limit - len(titles))})
            titles.extend(item["title"] for item in data.get("query", {}).get("categorymembers", []))
            if "continue" not in data:
                break
            params |= data["continue"]
        if not titles:
            raise InputError(f"{category} has no article pages on {self.lang}.wikipedia.org",
                             "check the category's name (without a typo, in the wiki's language)")
        return titles[:limit]

    # --- one request ----------------------------------------------------------------------------------------

    def query(self, params: dict[str, Any]) -> dict:
        params = {"action": "query", "format": "json", "formatversion": 2, **params}

        def send() -> httpx.Response:
            self._wait_turn()
            return self._http.get(self.url, params=params)

        failing = f"the Wikipedia API at {self.url} kept failing"
        fix = "try again later, or lower --rate-limit"
        try:
            response = send_with_retries(send, retries=self.retries, backoff_s=self.backoff_s, what="Wikipedia API",
                                         statuses=WIKIPEDIA_RETRY_STATUSES, max_retry_after_s=MAX_RETRY_AFTER_S,
                                         sleep=self.sleep)
        except httpx.TransportError as exc:
            raise InputError(f"{failing} ({type(exc).__name__}: {exc}) after {self.retries} retries", fix) from None
        if response.status_code in WIKIPEDIA_RETRY_STATUSES:
            raise InputError(f"{failing} (HTTP {response.status_code}) after {self.retries} retries", fix)
        return self._json(response)

    def _wait_turn(self) -> None:
        wait = self._last_request + self.interval_s - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        self._last_request = time.monotonic()

    def _json(self, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            raise InputError(f"the Wikipedia API answered HTTP {response.status_code}", f"check --api-url ({self.url})")
        try:
            data = response.json()
        except ValueError:
            raise InputError(f"{self.url} did not answer JSON", "check --api-url (a MediaWiki api.php)") from None
        if "error" in data:
            error = data["error"]
            raise InputError(f"the Wikipedia API refused the request: {error.get('code')}: {error.get('info')}",
                             "check the titles, category or language")
        return data


# --- pages on disk --------------------------------------------------------------------------------------------

def normalize_title(title: str) -> str:
    """MediaWiki's own normal form for titles: spaces for underscores, a capital first letter."""
    title = " ".join(title.replace("_", " ").split())
    return title[:1].upper() + title[1:]


def page_path(folder: Path, title: str) -> Path:
    name = urllib.parse.quote(normalize_title(title), safe=" ,()'-")
    if len(name) > 150:  # file names have a 255-byte limit; keep them unique with a digest
        name = f"{name[:120]}~{hashlib.sha256(title.encode()).hexdigest()[:16]}"
    return folder / f"{name}.txt"


def fetch_pages(client: WikipediaClient, titles: Sequence[str], folder: Path,
                progress: Progress | None = None) -> tuple[list[Document], FetchReport]:
    """Each page as a document (its title, then its text); pages already saved are read, not fetched."""
    report, documents = FetchReport(), []
    unique = list(_unique(titles))
    for done, title in enumerate(unique, 1):
        path = page_path(folder, title)
        if path.is_file():
            report.resumed += 1
            documents.append(Document(path.read_text(encoding="utf-8"), "wikipedia", title))
        elif (page := client.extract(title)) is None:
            report.skipped.append(Skipped(f"wikipedia:{title}", "no such page"))
        elif not page[1].strip():
            report.skipped.append(Skipped(f"wikipedia:{title}", "empty extract"))
        else:
            text = f"{page[0]}\n\n{page[1]}"
            atomic_write_text(path, text)
            report.fetched += 1
            documents.append(Document(text, "wikipedia", page[0]))
        if progress:
            progress(title, done, len(unique))
    return documents, report


def _unique(titles: Sequence[str]) -> Iterator[str]:
    seen = set()
    for title in titles:
        if (key := normalize_title(title)) and key not in seen:
            seen.add(key)
            yield title
