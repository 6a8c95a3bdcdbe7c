# The two commands the README gives:
#   make book   build the HTML book into _build/html (installs what it needs first)
#   make test   run the whole test suite: unit tests, every notebook under nbval,
#               notebook hygiene, the book build (-W -n) and a Colab-like fresh install
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
JUPYTER_BOOK = $(PYTHON) -c "from jupyter_book.cli.main import main; main()"

# Data for the pages: a folder that already holds the files (see wmbook/data.py). Next to a
# checkout in this project's workspace that is ../shared/data; elsewhere wmbook downloads
# each file once into ~/.cache/wmbook/data.
ifeq ($(WMBOOK_DATA_DIR),)
ifneq ($(wildcard ../shared/data/SOURCES.md),)
export WMBOOK_DATA_DIR := $(abspath ../shared/data)
endif
endif

.PHONY: install book html test test-fast execute clean

install:
	$(PIP) install -q -r requirements.txt -e .

book: install html

# The build itself (the tests call it with BOOK_OUT=<a temporary folder>).
BOOK_OUT ?= .
html:
	$(JUPYTER_BOOK) build . --path-output $(BOOK_OUT) -W -n --keep-going

test: install
	$(PYTHON) -m pytest tests chapters --nbval-lax -p no:cacheprovider -v --durations=15

# Unit tests only (seconds): for quick iterations while editing wmbook.
test-fast:
	$(PYTHON) -m pytest tests -m "not slow" -q

# Re-execute every notebook in the book (or NOTEBOOKS="a.ipynb b.ipynb") and store outputs and stamps.
execute:
	$(PYTHON) tools/execute.py $(NOTEBOOKS)

clean:
	rm -rf _build
