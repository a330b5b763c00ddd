# Two commands matter: `make run` (embedded: SQLite + in-process bus) and `make test`
# (real PostgreSQL and Apache Kafka, brought up by deploy/servers.sh).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit servers-up servers-down schemas clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/fangpin up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

servers-up:
	bash deploy/servers.sh up

servers-down:
	bash deploy/servers.sh down

# Brings up PostgreSQL and Kafka unless TEST_POSTGRES_URL / KAFKA_BOOTSTRAP_SERVERS are given.
test: $(STAMP) lint typecheck
	bash deploy/servers.sh up
	set -a; . var/servers.env; set +a; $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest -m "not postgres and not kafka and not e2e" $(PYTEST_ARGS)

schemas: $(STAMP)
	$(BIN)/fangpin schemas write

clean:
	bash deploy/servers.sh down || true
	rm -rf var $(VENV)
