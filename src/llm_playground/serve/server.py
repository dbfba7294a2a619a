"""Running the API: with uvicorn in the foreground (`llmp serve`) or in a background thread (tests, benchmarks)."""

from __future__ import annotations

import ipaddress
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from llm_playground.errors import InvalidParameter


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None, insecure: bool) -> None:
    """Without a key, anyone who can reach the port can use the model: only loopback, unless asked."""
    if api_key or insecure or is_loopback(host):
        return
    raise InvalidParameter(f"refusing to listen on {host} without an API key",
                           "give --api-key KEY (or set LLMP_API_KEY), bind 127.0.0.1, or pass --insecure")


def run(app: FastAPI, host: str, port: int) -> None:
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)


class BackgroundServer:
    """uvicorn on a free port of 127.0.0.1 in a daemon thread; `url` is its base URL (…/v1 for clients)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="llmp-uvicorn", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
