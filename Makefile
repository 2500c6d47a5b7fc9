# One command serves, one command tests; both install what they need into .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install install-runtime serve fhir-server test test-fast bench bench-http bench-peers clean vendor-smart

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	-$(BIN)/python -m pip install --quiet uv

# uv installs the same packages from the same index as pip, about ten times faster (a fresh
# `make serve` installs in seconds instead of two minutes); plain pip when uv could not be installed.
comma := ,
pip_install = if [ -x $(BIN)/uv ]; then $(BIN)/uv pip install --quiet --python $(BIN)/python $(1); \
	else $(BIN)/python -m pip install --quiet $(1); fi

# What the service needs to run: no test tools, so `make serve` is quick on a fresh machine.
$(VENV)/.installed-runtime: pyproject.toml | $(BIN)/python
	$(call pip_install,-e .)
	touch $@

# The local FHIR server (fhirstarter) on top of that.
$(VENV)/.installed-sandbox: $(VENV)/.installed-runtime
	$(call pip_install,-e '.[sandbox]')
	touch $@

# Everything, test tools included (browser, PostgreSQL driver, fuzzers, linters).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(call pip_install,-e '.[test$(comma)sandbox]')
	touch $@ $(VENV)/.installed-runtime $(VENV)/.installed-sandbox

install: $(VENV)/.installed
install-runtime: $(VENV)/.installed-runtime

serve: install-runtime
	@echo "make serve: development mode on the production entry point (python -m cds_hooks); relaxed for local use:"
	@echo "  SPINECDS_AUTH_ENABLED=false            client authentication OFF (see docs/security.md for production)"
	@echo "  SPINECDS_FHIR_ALLOW_HTTP_LOOPBACK=true  plain-http FHIR servers on this machine (make fhir-server)"
	@echo "  SPINECDS_TRY_PAGE=true SPINECDS_ALLOW_TRACE=true SPINECDS_API_DOCS=true SPINECDS_SMART_APP=true"
	@echo "  SPINECDS_ALLOWED_ORIGINS=https://sandbox.cds-hooks.org  (CORS for the public CDS Hooks Sandbox)"
	SPINECDS_AUTH_ENABLED=$${SPINECDS_AUTH_ENABLED:-false} SPINECDS_TRY_PAGE=$${SPINECDS_TRY_PAGE:-true} \
	SPINECDS_ALLOW_TRACE=$${SPINECDS_ALLOW_TRACE:-true} SPINECDS_API_DOCS=$${SPINECDS_API_DOCS:-true} \
	SPINECDS_SMART_APP=$${SPINECDS_SMART_APP:-true} \
	SPINECDS_FHIR_ALLOW_HTTP_LOOPBACK=$${SPINECDS_FHIR_ALLOW_HTTP_LOOPBACK:-true} \
	SPINECDS_ALLOWED_ORIGINS=$${SPINECDS_ALLOWED_ORIGINS:-https://sandbox.cds-hooks.org} \
	SPINECDS_HOST=$(HOST) SPINECDS_PORT=$(PORT) $(BIN)/python -m cds_hooks

# The local EHR stand-in: an in-memory FHIR R4 server with the synthetic patients (run beside `make serve`).
FHIR_PORT ?= 8080
fhir-server: $(VENV)/.installed-sandbox
	$(BIN)/spinecds sandbox fhir-server --host $(HOST) --port $(FHIR_PORT)

# Every test; `make test-fast` leaves out the slow ones (servers, browser, fuzzing, soak, linters).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

bench-http: install
	$(BIN)/python -m bench.http_bench $(BENCH_ARGS)

# The HTTP benchmark's peer: a HealthChain CDS Hooks app in its own virtual environment (healthchain pins
# another fhir.resources than ours), plus gunicorn in .venv for the worker-scaling runs. Needs Debian `wrk`.
PEERS_VENV ?= bench/.peers-venv
$(PEERS_VENV)/.installed:
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet healthchain uvicorn
	touch $@

bench-peers: install $(PEERS_VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[deploy]'
	@command -v wrk >/dev/null || echo "make bench-peers: install Debian's wrk (apt-get install wrk) for bench-http"

# Rebuild the SMART app's vendored browser libraries (npm + network; serving never needs this).
FHIRCLIENT_VERSION ?= 2.6.3
AXE_VERSION ?= 4.14.1
SMART_VENDOR = cds_hooks/static/smart/vendor
vendor-smart:
	rm -rf build/vendor-smart && mkdir -p build/vendor-smart
	cd build/vendor-smart && npm init -y >/dev/null && \
	  npm install --no-audit --no-fund --ignore-scripts fhirclient@$(FHIRCLIENT_VERSION) axe-core@$(AXE_VERSION)
	cp build/vendor-smart/node_modules/fhirclient/build/fhir-client.pure.min.js $(SMART_VENDOR)/
	sed -i '/^\/\/# sourceMappingURL=/d' $(SMART_VENDOR)/fhir-client.pure.min.js
	cp build/vendor-smart/node_modules/fhirclient/build/fhir-client.pure.min.js.LICENSE.txt $(SMART_VENDOR)/
	cp build/vendor-smart/node_modules/fhirclient/LICENSE $(SMART_VENDOR)/fhirclient.LICENSE
	cp build/vendor-smart/node_modules/axe-core/axe.min.js build/vendor-smart/node_modules/axe-core/LICENSE \
	  build/vendor-smart/node_modules/axe-core/LICENSE-3RD-PARTY.txt tests/vendor/axe-core/

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
