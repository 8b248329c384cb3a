# Two commands do all the set-up (see README):
#   make demo   create .venv with the runtime only, run calcsdk on the shipped samples
#   make test   create .venv with everything the tests need, run pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
OUT    ?= out/demo
PYTEST_ARGS ?=
# Parallel test workers (the suite is sized for 2 CPU cores).
WORKERS ?= 2

.PHONY: demo test lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip "setuptools>=64" wheel

# The runtime: numpy, opencv-contrib, onnxruntime (+ pydicom for the shipped DICOM sample).
$(VENV)/.runtime-installed: setup.py | $(BIN)/python
	$(PIP) install -q -e ".[dicom]"
	touch $@

# Tests: torch first, pinned (a bare 'torch' could pull a multi-GB CUDA build), then the extras.
$(VENV)/.test-installed: setup.py $(VENV)/.runtime-installed
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[train,dicom,distributed,dev]"
	touch $@

demo: $(VENV)/.runtime-installed
	$(BIN)/calcsdk demo --out $(OUT)

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest -n $(WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.test-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) out build *.egg-info
