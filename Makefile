# The two commands the README gives:
#   make book   build the HTML book into _build/html (installs what it needs first)
#   make test   run the whole test suite: unit tests, every notebook under nbval,
#               notebook hygiene, the book build (-W -n) and a Colab-like fresh install
#
# Where things are installed: into the active virtual environment when there is one
# (VIRTUAL_ENV is set), else into the project's own .venv, which the first command creates
# from $(BASE_PYTHON). A system Python is never pip-installed into (Debian and Ubuntu refuse
# that anyway: PEP 668, "externally-managed-environment"). `make ... PYTHON=/path/to/python`
# uses that interpreter as it is (the tests build the book that way).
BASE_PYTHON ?= python3
VENV ?= $(CURDIR)/.venv
ifdef VIRTUAL_ENV
PYTHON = $(VIRTUAL_ENV)/bin/python
else
PYTHON = $(VENV)/bin/python
endif
PIP = $(PYTHON) -m pip
# The project's own environment, when make manages it: created on first use, and installed
# once (again when requirements.txt or pyproject.toml change) before the targets that only run.
OWN_VENV := $(filter $(VENV)/bin/python,$(PYTHON))
READY := $(if $(OWN_VENV),$(VENV)/.installed)

# torch: the version pinned in requirements.txt. Without a GPU (no nvidia-smi) it comes from
# PyTorch's CPU wheel index (PyPI's Linux wheel is the multi-GB CUDA build); where that index
# cannot be reached within a few seconds, from the default index. Skipped when installed.
TORCH_PIN := $(shell sed -n 's/^torch==\([0-9][^ ;#+]*\).*/\1/p' requirements.txt)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
JUPYTER_BOOK = $(PYTHON) -c "from jupyter_book.cli.main import main; main()"

# Data for the pages: a folder that already holds the files (see wmbook/data/loaders.py). Next to a
# checkout in this project's workspace that is ../shared/data; elsewhere wmbook downloads
# each file once into ~/.cache/wmbook/data.
ifeq ($(WMBOOK_DATA_DIR),)
ifneq ($(wildcard ../shared/data/SOURCES.md),)
export WMBOOK_DATA_DIR := $(abspath ../shared/data)
endif
endif

# seqeval (entity F1, page 6.1) ships only a setup.py that fetches setuptools-scm the legacy way,
# which fails with setuptools-scm 10; a PEP 517 build works (pip >= 25.3 always builds that way).
export PIP_USE_PEP517 := 1

.PHONY: install torch book html test test-portable test-fast execute bench clean

install: torch
	$(PIP) install -q -r requirements.txt -e .
	$(if $(READY),@touch $(READY))

$(VENV)/bin/python:
	@echo "creating the virtual environment $(VENV) with $(BASE_PYTHON)"
	@$(BASE_PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "could not create $(VENV) with $(BASE_PYTHON)" \
	  "(on Debian/Ubuntu: apt install python3-venv; or activate a virtual environment of your own)" >&2; exit 1; }

$(VENV)/.installed: requirements.txt pyproject.toml | $(OWN_VENV)
	$(MAKE) --no-print-directory install

torch: $(OWN_VENV)
	@if [ -z "$(TORCH_PIN)" ]; then echo "requirements.txt pins no torch==VERSION" >&2; exit 1; fi
	@if $(PYTHON) -c "import importlib.metadata as m, sys; sys.exit(m.version('torch').split('+')[0] != '$(TORCH_PIN)')" 2>/dev/null; then \
	  echo "torch $(TORCH_PIN) is already installed"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then \
	  echo "installing torch $(TORCH_PIN) from the default index (nvidia-smi found: the CUDA build)"; \
	  $(PIP) install -q torch==$(TORCH_PIN); \
	elif $(PYTHON) -c "import urllib.request as u; u.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=5).close()" >/dev/null 2>&1; then \
	  echo "installing torch $(TORCH_PIN), the CPU build, from $(TORCH_CPU_INDEX) (no nvidia-smi)"; \
	  $(PIP) install -q --index-url $(TORCH_CPU_INDEX) torch==$(TORCH_PIN); \
	else \
	  echo "installing torch $(TORCH_PIN) from the default index ($(TORCH_CPU_INDEX) cannot be reached)"; \
	  $(PIP) install -q torch==$(TORCH_PIN); \
	fi

book: install html

# The build itself (the tests call it with BOOK_OUT=<a temporary folder>).
BOOK_OUT ?= .
html:
	$(JUPYTER_BOOK) build . --path-output $(BOOK_OUT) -W -n --keep-going

test: install
	$(PYTHON) -m pytest tests chapters --nbval-lax -p no:cacheprovider -v --durations=15

# The pages again, as another CPU would run them: other floating-point kernels, one thread.
# The stored outputs must hold within their tolerances without re-executing (README, "Writing a page").
PORTABLE_ENV = ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 OMP_NUM_THREADS=1
test-portable: $(READY)
	$(PORTABLE_ENV) $(PYTHON) -m pytest chapters --nbval-lax -p no:cacheprovider -q --durations=5

# Unit tests only (seconds): for quick iterations while editing wmbook.
test-fast: $(READY)
	$(PYTHON) -m pytest tests -m "not slow" -q

# Re-execute every notebook in the book (or NOTEBOOKS="a.ipynb b.ipynb") and store outputs and stamps.
execute: $(READY)
	$(PYTHON) tools/execute.py $(NOTEBOOKS)

# Timings of the package's building blocks (benchmarks/run.py).
bench: $(READY)
	$(PYTHON) benchmarks/run.py

clean:
	rm -rf _build
