# The course in two commands: `make course` (run every notebook) and `make test`.
# Both create .venv from requirements.lock when it is missing or older than the lock.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV := $(BIN)/uv
KERNEL := mlops-course
# nbgrader (make release) shells out to alembic, JupyterLab finds the kernel: the environment first.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# The course's own variables (MLflow telemetry off, no job runner) are set by the package
# itself (src/mlops_course/environment.py) for every command, kernel and server it starts.

PYTEST := $(BIN)/python -m pytest --durations=15
LINTED := src tests grading solutions walkthroughs

.PHONY: course test test-fast lab release lint format screenshots bench bench-attacks bench-grading lock env clean help

help:
	@echo "make course     execute every solution notebook headless (report in build/course/report.md)"
	@echo "make test       everything CI runs: unit tests, notebooks executed offline, three-way grading"
	@echo "make test-fast  unit tests, repository rules, release freshness, CLI (no notebook runs, no autograding)"
	@echo "make lab        JupyterLab on the course with the course kernel"
	@echo "make release    regenerate notebooks/ from solutions/ with nbgrader"
	@echo "make lint       ruff check and format check on the package, tests, walkthroughs and solution notebooks"
	@echo "make format     ruff format (and safe fixes) on the same files"
	@echo "make screenshots  pictures of the MLflow UI from the stores of 02 and 03, into their images/ folders"
	@echo "make bench      execute the course and write per-notebook seconds to build/bench.json"
	@echo "make bench-attacks  what the grader attacks score, grade command vs plain nbgrader (build/bench-attacks.md)"
	@echo "make bench-grading  sequential nbgrader vs mlops-course grade on 40 submissions (build/bench-grading.json)"
	@echo "make lock       re-resolve requirements.lock from pyproject.toml (needs the network)"

env: $(STAMP)

# uv installs the lock: pip bootstraps uv (its exact version is pinned in the lock), then
# `uv pip sync` makes the environment exactly the lock. Bytecode is compiled once for every
# package but aws-cdk-lib (196 MB of bytecode, of which the course's CDK app imports 30 MB: the
# first synthesis compiles those, see runtime/twins/cdk.py) and sympy (only cfn-lint's tests
# use it), so the environment stays under 2 GiB. Where PYTHONDONTWRITEBYTECODE is set (as on
# CI), Python would otherwise recompile every module at every kernel and server start.
$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: '$(PYTHON)' was not found (set PYTHON=/path/to/python3.11)."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$$(grep -E '^uv==' requirements.lock)"

$(STAMP): requirements.lock pyproject.toml | $(UV)
	$(UV) pip sync --quiet --python $(BIN)/python requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 -x '/site-packages/(aws_cdk|sympy)/' \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null
	$(BIN)/python -m mlops_course install-kernel
	@touch $(STAMP)

course: $(STAMP)
	$(BIN)/python -m mlops_course course

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=. --ServerApp.ip=127.0.0.1 --MultiKernelManager.default_kernel_name=$(KERNEL) \
		$(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/00_start_here/00_start_here.ipynb

release: $(STAMP)
	$(BIN)/python -m mlops_course release

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: $(STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

# Pictures of the MLflow UI on the stores notebooks 02 and 03 leave (Chromium, offline).
screenshots: $(STAMP)
	$(BIN)/python -m mlops_course course --only 02 03
	$(BIN)/python -m mlops_course screenshots
	$(BIN)/python -m mlops_course release --only 02 03

bench: $(STAMP)
	$(BIN)/python -m mlops_course course --bench

bench-attacks: $(STAMP)
	$(BIN)/python grading/bench_attacks.py

bench-grading: $(STAMP)
	$(BIN)/python grading/bench_grading.py

# Resolves with uv from the registry; versions already in the lock are kept unless a range
# in pyproject.toml excludes them (uv prefers the output file's pins).
lock: | $(UV)
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --quiet -o requirements.lock

clean:
	rm -rf build grading/work
