# Thin wrappers; the README names these targets.
VENV ?= .venv
BIN := $(VENV)/bin
CLI := $(BIN)/consent-ledger
DEMO := .ledger/demo
PYTHON ?= python3
# When the demo's unconfirmed purge orders are overdue (LEDGER_PURGE_CONFIRM_DAYS, 7, have passed).
IN_8_DAYS = $$($(BIN)/python -c 'import datetime as d; print((d.datetime.now(d.UTC) + d.timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ"))')

.PHONY: install browser demo test lint type unit bench hostile down clean constraints

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $@

demo: install
	$(CLI) up
	mkdir -p $(DEMO)
	$(CLI) generate --out $(DEMO)/events.jsonl --tenants 3 --subjects 2000 --bad-out $(DEMO)/bad.jsonl
	$(CLI) publish $(DEMO)/events.jsonl
	$(CLI) publish --unchecked $(DEMO)/bad.jsonl
	LEDGER_LOG_LEVEL=warning $(CLI) run --until-idle
	$(CLI) deadletters list --limit 3
	LEDGER_LOG_LEVEL=warning $(CLI) purge-agent --system crm --handler consumers.sample_purge_handler:delete --until-idle
	LEDGER_LOG_LEVEL=warning $(CLI) consume --until-idle
	LEDGER_LOG_LEVEL=warning $(CLI) project --until-idle
	LEDGER_LOG_LEVEL=warning $(CLI) scheduler --until-idle
	$(CLI) overdue tenant-1 --at $(IN_8_DAYS) | tail -n 3
	$(CLI) subject tenant-1 contact-000001
	LEDGER_LOG_LEVEL=warning $(CLI) declare tenant-1 examples/declaration.toml --by dpo@example.com --reason 'privacy notice v1'
	$(CLI) drift tenant-1 | tail -n 3
	$(CLI) violations tenant-1 | tail -n 1
	$(CLI) check tenant-1 contact-000001 --purpose service --channel sms
	$(CLI) check tenant-1 contact-000001 --purpose marketing --channel email || true
	$(CLI) stats
	LEDGER_LOG_LEVEL=warning $(CLI) checkpoint
	$(CLI) verify

test: install browser lint type
	$(BIN)/pytest

# The console's browser tests drive Debian's Chromium (never a browser downloaded by Playwright).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y --no-install-recommends chromium || \
	      { apt-get update && apt-get install -y --no-install-recommends chromium; } || \
	      { echo "could not install Debian's chromium with apt-get: the console's browser tests need it"; exit 1; }; \
	  else \
	    echo "no /usr/bin/chromium: run 'sudo apt-get install -y --no-install-recommends chromium', or the browser tests are skipped"; \
	  fi; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

type: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -m "not services"

bench: install
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.rebuild
	$(BIN)/python -m bench.breach
	$(BIN)/python -m bench.pointintime
	$(BIN)/python -m bench.cli
	$(BIN)/python -m bench.checkpoint
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.propagation
	$(BIN)/python -m bench.console

# What the Docker image installs, pinned to the versions this venv was tested with.
constraints: install
	$(BIN)/pip freeze --exclude-editable > constraints.txt

hostile: install
	$(BIN)/python -m bench.hostile

down: install
	$(CLI) down

clean: down
	rm -rf .ledger
