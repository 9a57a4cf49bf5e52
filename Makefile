# Entry points for operators and CI, run from the repository root.
#   make demo  make up, then play the spec's Example 1 and print the usage charts
#   make up    install whatever is missing, start Kafka, PostgreSQL and the services
#   make test  ruff, mypy and the whole test suite against real Kafka and PostgreSQL
#   make down  stop everything `make up` started; data stays in .local/

# uv must use the machine's Python: without this it tries to download one when the versions
# do not match, which fails here and hides the real error behind a hang.
export UV_PYTHON_DOWNLOADS := never

UV_VERSION := 0.13.8
# uv from PATH, else the one `bootstrap` installs with pip, run as a module so that where pip
# put its script (and whether that is on PATH) does not matter.
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: bootstrap up down

# Install uv (pinned) if absent, then the workspace's packages into .venv. With a uv.lock the
# sync is --frozen: exactly the locked versions, and the lock is never rewritten on the side;
# without one, uv resolves the dependencies and writes the lock.
bootstrap:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv==$(UV_VERSION) || \
		python3 -m pip install --quiet --break-system-packages uv==$(UV_VERSION)
	@if [ -f uv.lock ]; then $(UV) sync --frozen; else $(UV) sync; fi

up: bootstrap
	$(UV) run --no-sync ops up

# Works before any bootstrap: without the installed tool nothing can have been started.
down:
	@if [ -x .venv/bin/ops ]; then $(UV) run --no-sync ops down; \
	else echo "nothing to stop: the platform was never installed here"; fi

.PHONY: demo test lint format schemas

demo: up
	$(UV) run --no-sync ops demo

# The whole suite against real Kafka and PostgreSQL: the test fixtures use the servers named
# in the environment, else testcontainers when a Docker engine answers, else they start the
# local processes of `make up` (Kafka and PostgreSQL only) and leave them running.
test: bootstrap lint
	$(UV) run --no-sync pytest

lint: bootstrap
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy

format: bootstrap
	$(UV) run --no-sync ruff check --fix .
	$(UV) run --no-sync ruff format .

# JSON Schemas of every event, for producers written in other languages.
schemas: bootstrap
	$(UV) run --no-sync python -m contracts.schemas
