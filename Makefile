# driftwatch: two commands.
#   make up     set up everything and run the stack (service :3000, monitor :3001, Prometheus :9090, Alertmanager :9093)
#   make test   run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data

.PHONY: up test install system-deps bench lint clean

$(BIN)/driftwatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/driftwatch

# Prometheus and Alertmanager come from Debian's packages; install them when we can (root + apt).
system-deps:
	@if command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null && command -v docker-compose >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing prometheus and prometheus-alertmanager (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager wrk docker-compose >/dev/null; \
	else \
	  echo "prometheus/prometheus-alertmanager not found: run 'sudo apt-get install prometheus prometheus-alertmanager'"; \
	  echo "(driftwatch up still starts the service and the monitor without them)"; \
	fi

up: install system-deps
	DRIFTWATCH_DATA_DIR=$(DATA) $(BIN)/driftwatch train --demo --if-missing
	DRIFTWATCH_DATA_DIR=$(DATA) $(BIN)/driftwatch up

test: install system-deps
	$(BIN)/pytest -q

bench: install
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/log_floor.py
	$(BIN)/python bench/requestlog.py
	$(BIN)/python bench/commit_cost.py
	$(BIN)/python bench/monitor_cost.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/detection.py
	$(BIN)/python bench/drift_power.py

lint: install
	$(BIN)/ruff check driftwatch service monitors models tests bench grafana
	$(BIN)/hadolint Dockerfile

clean:
	rm -rf $(VENV) $(DATA)
