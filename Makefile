# The two commands of the README:
#   make run    run the tracker locally (embedded file sink, no cluster needed)
#   make test   install what is missing, start the test broker, run every test
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

RUN_CONFIG ?= deploy/local/privtrak.yaml
BROKER_PORT ?= 19092
# The Swift tests' PostgreSQL (the ledger); tests/ledger starts its own on 19532.
POSTGRES_PORT ?= 19432
SWIFT_TEST_FLAGS ?=

.PHONY: run run-kafka run-stack test setup build release test-swift test-python test-ledger-sql test-e2e test-shards test-deploy test-faults broker-start broker-stop postgres-start postgres-stop format format-check clean

setup:
	scripts/setup

build:
	swift build --build-tests

release:
	swift build -c release --product privtrak

run: setup release
	@scripts/run-banner file:privtrak-deltas.ptdl
	. scripts/env.sh && exec .build/release/privtrak serve --config $(RUN_CONFIG)

# The same with the local Kafka-protocol broker (Tansu) as the sink.
run-kafka: setup release
	. scripts/env.sh && scripts/broker start $(BROKER_PORT)
	@scripts/run-banner kafka://127.0.0.1:$(BROKER_PORT)/privtrak.deltas
	. scripts/env.sh && PRIVTRAK_KAFKA_ALLOW_TOPIC_AUTO_CREATION=true \
		exec .build/release/privtrak serve --config $(RUN_CONFIG) \
		--sink kafka://127.0.0.1:$(BROKER_PORT)/privtrak.deltas

# Broker + PostgreSQL + tracker + ledger, the whole pipeline on one machine
# (scripts/run-stack prints a psql line to watch the totals).
run-stack: setup release
	scripts/run-stack $(RUN_CONFIG)

broker-start:
	. scripts/env.sh && scripts/broker start $(BROKER_PORT)

broker-stop:
	scripts/broker stop $(BROKER_PORT)

test-swift:
	. scripts/env.sh && KAFKA_BOOTSTRAP=$${KAFKA_BOOTSTRAP:-127.0.0.1:$(BROKER_PORT)} \
		LEDGER_POSTGRES_URL=$${LEDGER_POSTGRES_URL:-$$(scripts/postgres url $(POSTGRES_PORT))} \
		scripts/swift-test $(SWIFT_TEST_FLAGS)

postgres-start:
	scripts/postgres start $(POSTGRES_PORT)

postgres-stop:
	scripts/postgres stop $(POSTGRES_PORT)

test-python:
	python3 -m pytest -q tests/python

# The ledger's SQL (schemas/ledger/migrations) against a real PostgreSQL: a private
# cluster on port 19532 (scripts/postgres), started and stopped by the tests.
test-ledger-sql:
	python3 -m pytest -q tests/ledger

test-e2e:
	swift build --product privtrak
	PRIVTRAK_BIN=$$(swift build --show-bin-path)/privtrak E2E_PASSKEY=0123456789abcdef0123456789abcdef \
		/usr/bin/python3 -m pytest -q tests/e2e

# Three privtrak shards behind the shipped HAProxy configuration (deploy/haproxy/haproxy.cfg,
# as is): real libtorrent clients, exact accounting across shards, no wrong_shard through the
# proxy, a misrouted request refused, a shard down answered retry-later (ports 19740-19789).
test-shards:
	swift build --product privtrak
	PRIVTRAK_BIN=$$(swift build --show-bin-path)/privtrak /usr/bin/python3 -m pytest -q tests/shards

# Fault suite: the real binary against its own Tansu brokers (ports 19492-19499):
# broker frozen and killed, tracker SIGTERM/SIGKILL, fencing (RELIABILITY.md).
test-faults:
	swift build --product privtrak
	. scripts/env.sh && PRIVTRAK_BIN=$$(swift build --show-bin-path)/privtrak \
		python3 -m pytest -q -s tests/faults

# Every overlay's shipped config passes check-config (and renders, where kubectl exists).
test-deploy:
	swift build --product privtrak
	PRIVTRAK_BIN=$$(swift build --show-bin-path)/privtrak deploy/check.sh

# Everything, in one command: setup, broker, format check, build, Swift tests, Python tests,
# ledger SQL tests, deploy manifests, real-client end-to-end tests, shards behind HAProxy,
# fault suite. The broker and the PostgreSQL cluster are stopped whatever the outcome.
test: setup
	$(MAKE) broker-start
	$(MAKE) postgres-start
	trap '$(MAKE) --no-print-directory broker-stop; $(MAKE) --no-print-directory postgres-stop' EXIT; \
	$(MAKE) --no-print-directory format-check && \
	$(MAKE) --no-print-directory build && \
	$(MAKE) --no-print-directory test-swift && \
	$(MAKE) --no-print-directory test-python && \
	$(MAKE) --no-print-directory test-ledger-sql && \
	$(MAKE) --no-print-directory test-deploy && \
	$(MAKE) --no-print-directory test-e2e && \
	$(MAKE) --no-print-directory test-shards && \
	$(MAKE) --no-print-directory test-faults

# Formatting follows the committed .swift-format (swift format's defaults, less
# two naming rules: golden vectors mirror the schema's snake_case field names,
# and the test harnesses take a configuration closure before the body).
SWIFT_SOURCES := Package.swift Sources Tests Benchmarks Fuzz

format:
	swift format --in-place --recursive --parallel $(SWIFT_SOURCES)

# Fails on any file `make format` would change, or any lint rule broken.
format-check:
	swift format lint --strict --recursive --parallel $(SWIFT_SOURCES)

clean:
	rm -rf .build
