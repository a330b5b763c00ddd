# Two commands matter: `make run` (embedded: SQLite + in-process bus) and `make test`
# (real PostgreSQL and Apache Kafka, brought up by deploy/servers.sh).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit servers-up servers-down schemas clean dashboard-assets \
	reliability

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The dashboard's charting library (Apache ECharts) comes from the npm registry at the version
# pinned, with its integrity hash, in services/casework/web/package-lock.json; it is copied into
# the git-ignored assets/vendor/ that casework serves and the wheel packages.
DASHBOARD := services/casework/web
ECHARTS := $(DASHBOARD)/assets/vendor/echarts.min.js

$(ECHARTS): $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	npm ci --prefix $(DASHBOARD) --ignore-scripts --no-audit --no-fund
	mkdir -p $(DASHBOARD)/assets/vendor
	cp $(DASHBOARD)/node_modules/echarts/dist/echarts.min.js $@
	cp $(DASHBOARD)/node_modules/echarts/LICENSE $(DASHBOARD)/assets/vendor/echarts.LICENSE.txt

dashboard-assets: $(ECHARTS)

run: $(STAMP) $(ECHARTS)
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
test: $(STAMP) $(ECHARTS) lint typecheck
	bash deploy/servers.sh up
	set -a; . var/servers.env; set +a; $(BIN)/pytest -p no:cacheprovider --durations=25 $(PYTEST_ARGS)

# The reliability suites (faults and dead letters on real PostgreSQL and Kafka, plus the hostile
# input and access suites where present), then docs/reliability.md rendered from the figures
# they recorded in var/reliability/.
RELIABILITY_TESTS ?= tests/e2e/test_faults.py tests/deploy/test_dlq.py \
	$(wildcard tests/security/test_schemathesis.py tests/security/test_access.py)

reliability: $(STAMP)
	bash deploy/servers.sh up
	set -a; . var/servers.env; set +a; $(BIN)/pytest -p no:cacheprovider $(RELIABILITY_TESTS) $(PYTEST_ARGS)
	$(BIN)/python -m deploy.reliability

unit: $(STAMP)
	$(BIN)/pytest -m "not postgres and not kafka and not e2e" $(PYTEST_ARGS)

schemas: $(STAMP)
	$(BIN)/fangpin schemas write

clean:
	bash deploy/servers.sh down || true
	rm -rf var $(VENV)
