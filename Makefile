# Salon: `make run` serves https://localhost:8443; `make test` runs every check.
# Both install what is missing first (Python deps with uv, the client with npm, and, for
# tests, Debian packages via apt when run as root).
SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
STATIC := src/salon/static
WEB_SOURCES := $(shell find web/src web/index.html web/public web/vite.config.ts web/tsconfig*.json -type f 2>/dev/null)
APT_PACKAGES := chromium coturn janus nginx postgresql redis-server openssh-server groovy default-jre-headless
PORT ?= 8443

.PHONY: run test check check-mypy check-tsc check-eslint format deps web system-deps unit integration e2e web-test types types-check clean

run: deps web
	$(VENV)/bin/salon serve --port $(PORT)

test: deps web system-deps check
	@# Bytecode for our own sources too: every server the tests start imports them, and
	@# with PYTHONDONTWRITEBYTECODE set nothing would be cached (measured: 4.2 -> 1.5 CPU s).
	$(PY) -m compileall -q src
	@# Three workers on two cores: most of these tests wait on the server's deadlines and
	@# sockets, not on the CPU (measured: 7 min 18 s in one process, about 5 min in three).
	@# Work stealing: an idle worker takes queued tests from a busy one, so the run does not
	@# end waiting on one worker's backlog (measured 2026-12-01: 373 s against 405 s).
	$(VENV)/bin/pytest -q -p no:cacheprovider -n 3 --dist worksteal tests --ignore=tests/e2e
	$(VENV)/bin/pytest -q -p no:cacheprovider --durations=25 tests/e2e
	cd web && npm test --silent

check: deps
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports
	$(MAKE) --no-print-directory types-check
	@# The three slow checks side by side (one after another they took 51 s from a clean
	@# checkout on 2 cores: mypy 21, tsc 12, eslint 18).
	$(MAKE) --no-print-directory -j3 --output-sync=target check-mypy check-tsc check-eslint

check-mypy: deps
	$(VENV)/bin/mypy

check-tsc: web/node_modules/.stamp-npm
	cd web && npm run --silent typecheck && echo "tsc: ok"

check-eslint: web/node_modules/.stamp-npm
	cd web && npm run --silent lint && echo "eslint: ok"

format: deps
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

# --- Python: uv, then the locked environment -------------------------------------------
$(UV):
	python3 -m pip install --user --quiet uv 2>/dev/null \
		|| python3 -m pip install --user --quiet --break-system-packages uv

deps: $(VENV)/.stamp-deps
$(VENV)/.stamp-deps: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --quiet --compile-bytecode
	@touch $@

# --- The browser client ------------------------------------------------------------------
web: $(STATIC)/index.html
$(STATIC)/index.html: web/node_modules/.stamp-npm $(WEB_SOURCES)
	cd web && npm run --silent build

web/node_modules/.stamp-npm: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Protocol types for the client, generated from the server's JSON Schema.
types: deps web/node_modules/.stamp-npm
	$(VENV)/bin/salon schema > web/src/protocol/schema.json
	cd web && npm run --silent gen:types

types-check: deps web/node_modules/.stamp-npm
	@tmp=$$(mktemp -d); $(VENV)/bin/salon schema > $$tmp/schema.json; \
	if ! diff -q $$tmp/schema.json web/src/protocol/schema.json >/dev/null; then \
		echo "web/src/protocol/schema.json is stale: run 'make types'"; rm -rf $$tmp; exit 1; fi; \
	cd web && npm run --silent gen:types -- --check; status=$$?; rm -rf $$tmp; \
	[ $$status = 0 ] && echo "protocol types: in step with the server"; exit $$status

# --- System packages for the tests (Chromium, coturn, Janus, nginx, PostgreSQL, Redis) -----
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else echo "missing Debian packages:$$missing (run as root, or install them); tests that need them will say so"; fi; \
	fi

clean:
	rm -rf $(VENV) $(STATIC) web/node_modules build
