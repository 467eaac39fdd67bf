# One command loop: `make demo`, `make test`, `make lint`, `make bench`.
# Every target creates the virtualenv and installs what it needs, so each works on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,demo,openai,mistral,geoip,service

.PHONY: uwsgi node-deps fixtures test-sdk-matrix develop demo test test-wheel lint bench sysdeps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]" --config-settings editable_mode=strict
	touch $(STAMP)

# Debian's Prometheus (promtool) for the end-to-end tests; skipped when already present.
sysdeps:
	@command -v prometheus >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "prometheus not found and cannot apt-get install it; e2e tests needing it will fail"; fi; }

# Strict editable installs map files at install time, so re-link (no deps, a few seconds) each run
# to pick up modules added since.
develop: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=strict

# npm @tgwf/co2 0.19.0 (pinned by scripts/co2js/package-lock.json): lets the tests re-run co2.js and compare
# with the committed fixtures byte for byte. Without node/npm those two tests skip, saying why.
node-deps:
	@if command -v npm >/dev/null 2>&1; then \
	  (cd scripts/co2js && npm ci --no-audit --no-fund --silent) || echo "npm ci failed: co2.js regeneration tests will skip"; \
	  (cd tests/e2e/node_app && npm ci --no-audit --no-fund --silent) || echo "npm ci failed: the Node.js OpenTelemetry test will skip"; \
	else echo "npm not found: co2.js regeneration and Node.js OpenTelemetry tests will skip"; fi

# uWSGI for the pre-fork tests: built from source (needs a C compiler), so it is tried here rather
# than listed in an extra; without it that one test skips, saying why.
uwsgi:
	@test -x $(BIN)/uwsgi || \
	  $(BIN)/python -m pip install -q "uwsgi>=2.0.28" >/dev/null 2>&1 || echo "uWSGI could not be built here: its pre-fork test will skip"

demo: develop
	$(BIN)/otel-downstream demo

test: develop sysdeps node-deps uwsgi
	$(BIN)/python -m pytest tests

# The built wheel, installed in a venv of its own, passes the same tests (no editable paths).
test-wheel: $(STAMP)
	rm -rf dist .venv-wheel
	$(BIN)/python -m build -q --wheel --outdir dist .
	$(PYTHON) -m venv .venv-wheel
	.venv-wheel/bin/python -m pip install -q "$$(ls dist/*.whl)[$(EXTRAS)]"
	cd tests && ../.venv-wheel/bin/python -m pytest -c ../pyproject.toml --rootdir .. . -m "not e2e"

# The LLM wrappers against the oldest supported SDK generations, each in a throw-away venv.
test-sdk-matrix:
	OPENAI_SPEC='openai==1.40.0' MISTRAL_SPEC='mistralai==1.0.0' bash scripts/test_sdk_matrix.sh
	OPENAI_SPEC='openai>=1.100,<2' MISTRAL_SPEC='mistralai>=1.12,<2' bash scripts/test_sdk_matrix.sh

lint: develop
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: develop
	$(BIN)/python -m pip install -q -e ".[bench]" --config-settings editable_mode=strict
	$(BIN)/python -m tests.benchmarks

# Regenerate every reference fixture and derived table from the real tools (npm @tgwf/co2 0.19.0,
# PyPI ecologits 0.11.3, codecarbon's generation mixes), then check `git diff` is empty.
fixtures:
	cd scripts/co2js && npm ci --no-audit --no-fund && node generate_fixtures.mjs && node export_grid_data.mjs
	$(PYTHON) -m venv /tmp/eco-venv && /tmp/eco-venv/bin/pip install -q -r scripts/ecologits/requirements.txt
	/tmp/eco-venv/bin/python scripts/ecologits/sync_registry.py
	/tmp/eco-venv/bin/python scripts/ecologits/generate_fixtures.py
	$(PYTHON) scripts/water/build_water_table.py
	git status --short exporters/data tests/exporters/fixtures

clean:
	rm -rf $(VENV) .venv-wheel dist build *.egg-info .mypy_cache .ruff_cache
