# The course in two commands: `make course` (run every notebook) and `make test`.
# Both create .venv from requirements.lock when it is missing or older than the lock.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := mlops-course
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Lean MLflow servers everywhere (see src/mlops_course/servers.py).
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION := false
# MLflow 3 reports usage over the network by default; the course sends nothing.
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: course test lab release lint format bench bench-grading lock env clean help

help:
	@echo "make course   execute every solution notebook headless (report in build/course/report.md)"
	@echo "make test     unit tests, notebook execution, three-way grading"
	@echo "make lab      JupyterLab on the course with the course kernel"
	@echo "make release  regenerate notebooks/ from solutions/ with nbgrader"
	@echo "make lint     ruff check and format check on the package, tests, walkthroughs and solution notebooks"
	@echo "make format   ruff format (and safe fixes) on the same files"
	@echo "make bench    execute the course and write per-notebook seconds to build/bench.json"
	@echo "make bench-grading  sequential nbgrader vs mlops-course grade on 40 submissions (build/bench-grading.json)"
	@echo "make lock     re-resolve requirements.lock from pyproject.toml (needs the network)"

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: '$(PYTHON)' was not found (set PYTHON=/path/to/python3.11)."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m mlops_course install-kernel
	@touch $(STAMP)

course: $(STAMP)
	$(BIN)/python -m mlops_course course

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=. --ServerApp.ip=127.0.0.1 --MultiKernelManager.default_kernel_name=$(KERNEL) \
		$(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/00_start_here/00_start_here.ipynb

release: $(STAMP)
	cd grading && for nb in ../solutions/*/; do \
		name=$$(basename $$nb); \
		$(CURDIR)/$(BIN)/python -m nbgrader generate_assignment $$name --force --log-level=WARN || exit 1; \
	done

LINTED := src tests grading solutions walkthroughs

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: $(STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

bench: $(STAMP)
	$(BIN)/python -m mlops_course course --bench

bench-grading: $(STAMP)
	$(BIN)/python grading/bench_grading.py

lock:
	$(PYTHON) -m pip install --quiet uv && $(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf build grading/work
