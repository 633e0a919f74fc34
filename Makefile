# Each target installs what it needs first: on a fresh machine `make sweep` and `make test` are
# the only two commands needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TRIALS ?= 200
ARGS ?=
# GPU=1 installs TensorFlow with its CUDA libraries (the "gpu" extra) for a Linux GPU machine.
GPU ?=
comma := ,
EXTRAS := dev,dashboard,postgres$(if $(GPU),$(comma)gpu)
INSTALLED := $(VENV)/.installed$(if $(GPU),-gpu)

.PHONY: install test test-fast sweep dashboard bench lint screenshots

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

# Two worker processes (pytest-xdist), one per core; tests/conftest.py says which tests share one.
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# The inner loop: everything but the tests that start several processes or run many trials,
# on both cores as `make test` runs (serially it took 4.5 min on 2 cores, over its 3-min goal).
test-fast: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow"

sweep: install
	$(BIN)/ocl sweep --trials $(TRIALS) $(ARGS)

dashboard: install
	$(BIN)/ocl dashboard $(ARGS)

bench: install
	$(BIN)/python benchmarks/run_all.py $(ARGS)

# PNGs of the report, the dictionary plot and optuna-dashboard into docs/, from a small real sweep
# (needs Debian's chromium and chromium-driver; about three minutes on two cores).
screenshots: install
	$(BIN)/python scripts/screenshots.py $(ARGS)

lint: install
	$(BIN)/ruff check sweep layers_index tests benchmarks scripts
	$(BIN)/ruff format --check sweep layers_index tests benchmarks scripts
