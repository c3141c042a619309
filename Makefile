# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test check bench-engine bench-worker bench-slow-feed broker clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Start a local Apache Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set) and run the whole product for a few minutes.
demo: install
	scripts/install-kafka
	$(BIN)/qstreams demo $(DEMO_ARGS)

## Lint, type-check and run every test, including the ones against a real Apache Kafka broker.
test: install
	scripts/check
	scripts/install-kafka
	scripts/install-chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: install
	scripts/check

broker: install
	scripts/install-kafka
	$(BIN)/qstreams dev broker

## Engine vs pandera on three contracts, clean and with 1/10/30% bad rows (BENCH_ARGS: --sizes, --repeat...).
bench-engine: install
	PYTHONPATH=. $(BIN)/python benchmarks/bench_engine.py $(BENCH_ARGS)

bench-worker: install
	scripts/install-kafka
	$(BIN)/python benchmarks/bench_worker.py

## A worker on a slow feed (300 records/s): batch size, CPU per record, latency; one getmany per poll vs filling.
bench-slow-feed: install
	scripts/install-kafka
	PYTHONPATH=. $(BIN)/python benchmarks/bench_slow_feed.py $(BENCH_ARGS)

## One worker for 10 minutes at 500 records/s with incidents: RSS, fds and counts over time (SOAK_ARGS to change).
.PHONY: soak
soak: install
	scripts/install-kafka
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis build *.egg-info
