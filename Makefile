# Entry points for operators and CI, run from the repository root.
#   make demo  make up, then play the spec's Example 1 and print the usage charts
#   make up    install whatever is missing, start Kafka, PostgreSQL and the services
#   make test  ruff, mypy and the whole test suite against real Kafka and PostgreSQL
#   make browser  install Debian's Chromium and chromedriver (browser tests) when missing
#   make down  stop everything `make up` started; data stays in .local/
#   make replay SERVICE=credits    consume its input topics again (state unchanged);
#                                  FROM=2026-01-15 and TOPIC=booking.sessions narrow it
#   make rebuild SERVICE=credits   drop its database, rebuild it from its topics (asks first)
#   make bench-rebuild             measure the rebuild rate of analytics and credits (slow)
#   make chaos                     a workload under random faults, checked (docs/reliability.md);
#                                  SEED=N replays a run, CHAOS="--duration 60 …" sets the rest
#   make bench                     every benchmark of docs/benchmarks.md, one after another (slow)

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

.PHONY: demo test lint format schemas browser

demo: up
	$(UV) run --no-sync ops demo

# The whole suite against real Kafka and PostgreSQL: the test fixtures use the servers named
# in the environment, else testcontainers when a Docker engine answers, else they start the
# local processes of `make up` (Kafka and PostgreSQL only) and leave them running.
test: bootstrap lint browser
	$(UV) run --no-sync pytest

# The real browser of the browser tests (docs/testing.md): Debian's chromium and
# chromium-driver, installed with apt-get as `ops up` installs PostgreSQL; nothing when both
# are on PATH.
browser: bootstrap
	$(UV) run --no-sync ops browser

lint: bootstrap
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy

format: bootstrap
	$(UV) run --no-sync ruff check --fix .
	$(UV) run --no-sync ruff format .

# JSON Schemas of every event (contracts/schemas/), for producers written in other languages,
# and each service's AsyncAPI document (contracts/asyncapi/), written from the services' apps
# (the contract imports no service). Tests fail when either is stale.
schemas: bootstrap
	$(UV) run --no-sync python -m contracts.schemas
	$(UV) run --no-sync python -m ops.asyncapi_documents

.PHONY: replay rebuild bench-rebuild check-service chaos

# On a platform of its own (its own Kafka, PostgreSQL and service processes, on free ports),
# so it runs beside `make up`'s and leaves it alone.
chaos: bootstrap
	$(UV) run --no-sync ops chaos $(if $(SEED),--seed $(SEED)) $(CHAOS)

# Refuses a missing or unknown SERVICE before anything else runs.
check-service:
	@case " booking workouts credits analytics " in *" $(SERVICE) "*) ;; *) \
		echo "usage: make $(or $(MAKECMDGOALS),replay) SERVICE=<booking|workouts|credits|analytics>" >&2; \
		exit 2;; esac

# Stop the service, rewind its consumer group to the earliest offsets, start it and follow
# it until it has caught up. Its state does not change. FROM=<RFC 3339 time or date> replays
# only the records since then; TOPIC=<one of its input topics> only that topic.
replay: check-service bootstrap
	$(UV) run --no-sync ops replay $(SERVICE) $(if $(FROM),--from '$(FROM)') $(if $(TOPIC),--topic '$(TOPIC)')

# The same after dropping and recreating its database (with its migrations). It asks
# before dropping anything; YES=1 answers yes for scripts and CI. Without a terminal to ask
# on and without YES=1 it refuses, so nothing is ever dropped unattended by mistake.
rebuild: check-service bootstrap
	$(UV) run --no-sync ops rebuild $(SERVICE) $(if $(filter 1 y yes true,$(YES)),--yes)

# Rebuild rate of analytics and credits on an isolated copy (its own topic prefix, scratch
# databases, its own processes) on the local Kafka and PostgreSQL; about 20 minutes with
# the defaults. Never part of `make test`. BENCH_ARGS="--events 5000 --runs 5" to vary.
bench-rebuild: bootstrap
	$(UV) run --no-sync ops up --infra-only
	$(UV) run --no-sync python bench/rebuild.py $(BENCH_ARGS)

.PHONY: bench bench-credits bench-consumer bench-poison bench-latency bench-stream bench-http bench-memory bench-wrk bench-analytics bench-ledger bench-history bench-platform-history bench-dashboard

# The benchmarks of docs/benchmarks.md against the running platform, started first when it
# is not (`make up` changes nothing when it runs). Each prints its table. Never part of
# `make test`. BENCH_ARGS passes options: BENCH_ARGS="--runs 1 --json credits.json".
bench-credits: up
	$(UV) run --no-sync python bench/credits_throughput.py $(BENCH_ARGS)

# The credits consumer alone (no Kafka, no other service), batches beside one record each.
bench-consumer: up
	$(UV) run --no-sync python bench/credits_consumer.py $(BENCH_ARGS)

# Credits with 1,000 poison records among 10,000 sessions, beside the same load clean: the
# rate of each, what it cannot read dead-lettered, no valid one lost; fails when a check does.
bench-poison: up
	$(UV) run --no-sync python bench/poison.py $(BENCH_ARGS)

bench-latency: up
	$(UV) run --no-sync python bench/latency.py $(BENCH_ARGS)

# From a logged workout to the usage event on a client's event stream.
bench-stream: up
	$(UV) run --no-sync python bench/usage_stream.py $(BENCH_ARGS)

# The dashboard in headless Chromium: its first paint, and a logged workout shown live.
bench-dashboard: up browser
	$(UV) run --no-sync python bench/dashboard.py $(BENCH_ARGS)

bench-http: up bench-wrk
	$(UV) run --no-sync python bench/http_load.py $(BENCH_ARGS)

bench-memory: up bench-wrk
	$(UV) run --no-sync python bench/memory.py $(BENCH_ARGS)

# Analytics' answers on a large history (1,000,000 workouts of 10,000 clients in a scratch
# database; PostgreSQL only); about 2 minutes a run.
bench-analytics: bootstrap
	$(UV) run --no-sync ops up --infra-only
	$(UV) run --no-sync python bench/analytics_queries.py $(BENCH_ARGS)

# Credits' per-batch ledger lookups on ledgers of 100k, 1M and 3M entries (a scratch
# database; PostgreSQL only); about 45 s a run.
bench-ledger: bootstrap
	$(UV) run --no-sync ops up --infra-only
	$(UV) run --no-sync python bench/ledger_lookups.py $(BENCH_ARGS)

# The credits consumer on top of histories of 0, 1M and 10M events (scratch databases;
# PostgreSQL only), about 4 minutes a run; the curve drawn in docs/cost-curve.png.
bench-history: bootstrap browser
	$(UV) run --no-sync ops up --infra-only
	$(UV) run --no-sync python bench/credits_history.py --chart docs/cost-curve.png $(BENCH_ARGS)

# All four services with credits on histories of 0 and 10M events (scratch databases it
# switches credits to, then back): the rate end to end and the latency, about 15 minutes
# with the defaults; the curves drawn in docs/platform-curve-rate.png and -latency.png.
bench-platform-history: up browser
	$(UV) run --no-sync python bench/platform_history.py --chart docs/platform-curve $(BENCH_ARGS)

# All of them in turn (not with -j: they would load the machine together). BENCH_ARGS reaches
# each of them, so give only what all take: BENCH_ARGS="--runs 1".
bench: bench-credits bench-consumer bench-poison bench-latency bench-stream bench-http bench-memory bench-rebuild bench-analytics bench-ledger bench-history bench-platform-history bench-dashboard

# wrk, Debian's package, installed when missing as `ops up` installs PostgreSQL: apt-get
# as root; anyone else is told the command to run.
bench-wrk:
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" != 0 ]; then \
			echo "wrk is not installed: install it: apt-get install wrk" >&2; exit 1; fi; \
		echo "wrk: installing it (apt-get install wrk), once"; mkdir -p .local/log; \
		{ DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends wrk; } >>.local/log/apt.log 2>&1 || \
		{ echo "apt-get install wrk failed: read .local/log/apt.log" >&2; exit 1; }; }
