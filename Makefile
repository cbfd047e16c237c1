# cnnlab: `make lab` opens the labs, `make test` runs the tests (`make test-fast`: the fast tier,
# while editing; `make test-jax`: the JAX backend).  All create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PORT ?= 8888
LAB ?= 01
SUBMISSIONS ?= submissions/
# Submissions graded at once; empty: the number of CPU cores.
JOBS ?=
# The course secret's file (hidden inputs are drawn from it); empty: $CNNLAB_GRADING_SECRET or
# the fixed seeds, with a warning.
SECRET ?=
PROFILE ?= smoke
# WHOLE_NOTEBOOK=1: `make grade` runs the cells the labs tag demo too (--whole-notebook).
# `make lab` serves the whole repository (so notebooks' ../images/... resolve) and opens DIR
# first: `make lab DIR=solutions` for instructors.  LAB_ARGS adds JupyterLab arguments
# (`make lab LAB_ARGS=--no-browser`); --allow-root is added apart, only when running as root
# (containers), so overriding LAB_ARGS never drops it.
DIR ?= labs
LAB_ARGS ?=
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

# The tests that `make test-jax` runs again with the JAX backend (CPU).
JAX_TESTS ?= tests/test_models.py tests/test_counters.py tests/test_graph.py \
	tests/test_transfer.py tests/test_datasets_textures.py tests/test_pretrained.py

.PHONY: install lab test test-fast test-jax test-lessons solutions labs grade images clean

install: $(STAMP)

# Reinstall only when the requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Test-only additions (the JAX backend): installed by `make test`, not by `make lab`.
$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

lab: $(STAMP)
	@test -d "$(DIR)" || { echo "make lab: DIR=$(DIR) is not a folder of this repository" \
	  "(try DIR=labs or DIR=solutions)" >&2; exit 2; }
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
	  --FileContentsManager.preferred_dir="$(DIR)" --LabApp.default_url="/lab/tree/$(DIR)" \
	  --port=$(PORT) $(ALLOW_ROOT) $(LAB_ARGS)

# The browser test (tests/browser), the students' release (tests/test_release.py: every
# untouched lab run from a fresh virtual environment) and the Slurm test (tests/test_slurm.py,
# opt-in: CNNLAB_SLURM_TEST=1, which .ci/run sets as root) run beside the rest, in a second
# pytest process: the browser's JupyterLab serves a copy of the kit, the release and Slurm work in
# temporary folders, so they never write the same files, and `make test` takes about the
# longer of the two processes instead of their sum.  Its log is printed when both are done
# (results/browser-test.log).  The tests marked `jax` (a JAX subprocess each) run in
# `make test-jax`.
BESIDE := tests/browser tests/test_release.py tests/test_slurm.py
test: $(DEV_STAMP)
	@mkdir -p results
	@$(BIN)/python -m pytest -p no:cacheprovider $(BESIDE) >results/browser-test.log 2>&1 & \
	browser=$$!; trap 'kill $$browser 2>/dev/null' INT TERM; \
	$(BIN)/python -m pytest --ignore=tests/browser --ignore=tests/test_release.py \
	  --ignore=tests/test_slurm.py --ignore=tests/lessons -m "not jax"; \
	suite=$$?; \
	wait $$browser; browser_status=$$?; \
	echo "==== $(BESIDE), run beside the tests above" \
	  "(results/browser-test.log):"; \
	cat results/browser-test.log; \
	test $$suite -eq 0 && test $$browser_status -eq 0

# The fast tier, the edit-and-test loop (CONTRIBUTING.md): the tests `make test` runs in its
# first process, less those marked `slow` (a lab or a batch graded, a real training run,
# kernels or a server started: more than a few seconds each).
FAST_IGNORE := $(foreach path,$(BESIDE) tests/lessons,--ignore=$(path))
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider $(FAST_IGNORE) -m "not slow and not jax"

# The same model, counter, transfer and pretrained tests on the JAX backend (what the GPU
# machines run; TensorFlow-only comparisons inside them skip themselves), then the tests that
# compare TensorFlow in this process with a JAX subprocess.
test-jax: $(DEV_STAMP)
	KERAS_BACKEND=jax $(BIN)/python -m pytest -p no:cacheprovider -m "not jax" $(JAX_TESTS)
	$(BIN)/python -m pytest -p no:cacheprovider -m jax

# The labs whose `cpu` sizes differ from their `smoke` ones (Labs 06 and 07), run in `cpu` as a
# student's laptop runs them, each asserting the headline results its opening cell lists
# (tests/lessons; a few minutes per lab).
test-lessons: $(DEV_STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -s tests/lessons

labs: $(STAMP)
	$(BIN)/cnnlab build-labs

solutions: $(STAMP)
	$(BIN)/cnnlab run solutions/ --profile $(PROFILE)

grade: $(STAMP)
	$(BIN)/cnnlab grade --lab $(LAB) $(SUBMISSIONS) --out results/ $(if $(SECRET),--secret $(SECRET)) $(if $(WHOLE_NOTEBOOK),--whole-notebook) $(if $(JOBS),--jobs $(JOBS))

images: $(STAMP)
	$(BIN)/python -m cnnlab.figures images/conv_arithmetic

clean:
	rm -rf $(VENV) results .pytest_cache
