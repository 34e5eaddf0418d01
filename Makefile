# Velo: `make run` starts the whole product on the embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
INSTALLED := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test lint format bench bench-quick install clean

install: $(INSTALLED)

$(INSTALLED): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Velo needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

run: $(INSTALLED)
	mkdir -p var/static
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=1 $(BIN)/python manage.py ensure_superuser --password-file var/admin-password
	DJANGO_DEBUG=1 $(BIN)/python manage.py velo_demo --records 2000
	DJANGO_DEBUG=1 $(BIN)/python manage.py ensure_superuser --password-file var/admin-password
	DJANGO_DEBUG=1 PATH="$(BIN):$$PATH" $(BIN)/honcho start -f Procfile.dev

test: $(INSTALLED)
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks (issue 5) on PostgreSQL + Redis at 127.0.0.1, in a database of their own.
bench: $(INSTALLED)
	$(BIN)/python -m bench

bench-quick: $(INSTALLED)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) var
