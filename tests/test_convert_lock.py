"""The one-time GGUF conversion cannot race: two processes (xdist workers) asking at once convert once."""

from __future__ import annotations

import threading
import time

from llm_playground.model import convert


def test_concurrent_first_loads_convert_once(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMP_CACHE_DIR", str(tmp_path / "cache"))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF placeholder")  # the conversion itself is replaced below; only the lock is tested
    calls: list[float] = []

    def slow_convert(path, label, target):
        calls.append(time.monotonic())
        time.sleep(0.5)  # long enough for the other caller to arrive while this one converts
        with convert.atomic_dir(target) as tmp:
            (tmp / "config.json").write_text("{}")

    monkeypatch.setattr(convert, "_convert", slow_convert)
    results: list[object] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            results.append(convert.ensure_converted(gguf, label="tiny"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and len(results) == 3
    assert len(calls) == 1, "the GGUF file was converted more than once"
    assert len(set(results)) == 1 and (results[0] / "config.json").is_file()
    # a later call finds the directory without taking the lock's slow path
    assert convert.ensure_converted(gguf, label="tiny") == results[0] and len(calls) == 1
