# cnnlab: `make lab` opens the labs, `make test` runs the tests.  Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8888
LAB ?= 01
SUBMISSIONS ?= submissions/
PROFILE ?= smoke
# JupyterLab refuses to run as root (containers) unless told: allow it only there.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: install lab test solutions labs grade images clean

install: $(STAMP)

# Reinstall only when the requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=labs --port=$(PORT) $(LAB_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest

labs: $(STAMP)
	$(BIN)/cnnlab build-labs

solutions: $(STAMP)
	$(BIN)/cnnlab run solutions/ --profile $(PROFILE)

grade: $(STAMP)
	$(BIN)/cnnlab grade --lab $(LAB) $(SUBMISSIONS) --out results/

images: $(STAMP)
	$(BIN)/python -m cnnlab.figures images/conv_arithmetic

clean:
	rm -rf $(VENV) results .pytest_cache
