# The two commands of the README: `make run` and `make test`. Both set up .venv first.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BUF := tools/buf/node_modules/.bin/buf
AXE := tools/axe/node_modules/axe-core/axe.min.js
PYTHON ?= python3

.PHONY: run test generate lint contracts bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/interops serve --demo-data

test: $(STAMP) $(AXE)
	$(BIN)/pytest

generate: $(STAMP)
	$(BIN)/python tools/generate_protos.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(BUF): tools/buf/package.json tools/buf/package-lock.json
	cd tools/buf && npm install --no-audit --no-fund --loglevel=error
	touch $(BUF)

# axe-core, pinned, for the accessibility checks of the web pages (tests/web/).
$(AXE): tools/axe/package.json tools/axe/package-lock.json
	cd tools/axe && npm ci --no-audit --no-fund --loglevel=error
	touch $(AXE)

# buf lint and format, buf breaking against the previous commit, and generated code up to date.
contracts: $(STAMP) $(BUF)
	$(BUF) lint
	$(BUF) format --diff --exit-code protos
	tools/check_breaking.sh $(BUF)
	$(BIN)/python tools/generate_protos.py > /dev/null
	git status --porcelain -- gen | (! grep .) || (echo "gen/ differs from the contracts: run make generate and commit" && git status --short gen && exit 1)

bench: $(STAMP)
	$(BIN)/python -m bench.registry_import
	$(BIN)/python -m bench.registry_lookup
	$(BIN)/python -m bench.token_verify
	$(BIN)/python -m bench.audit_overhead
	$(BIN)/python -m bench.dsn_validate
	$(BIN)/python -m bench.dsn_routing
	$(BIN)/python -m bench.notify_fanout
	$(BIN)/python -m bench.relations_checks
	$(BIN)/python -m bench.rest_overhead
	$(BIN)/python -m bench.sign_in_timing

clean:
	rm -rf $(VENV) tools/buf/node_modules tools/axe/node_modules var
