# loopgate — the entry point for humans and CI. `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
BIN := bin/loopgate
SERVICES := deploy/local/services.sh
# Integration tests need the services that `make services` starts; the
# variables they read come from `services.sh env`.
WITH_SERVICES := eval "$$($(SERVICES) env)" &&

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/loopgate
	$(GO) build -o $(BIN) ./cmd/loopgate

.PHONY: run
run: build ## start the whole loop in one process on embedded Kafka and ClickHouse (Ctrl-C stops)
	deploy/local/chdb.sh install >/dev/null
	@echo "Grafana: dashboards in dashboards/json/, provisioning in deploy/grafana/provisioning/, alerts in deploy/prometheus/."
	@echo "  make run keeps ClickHouse embedded (Grafana cannot reach it); to watch the dashboards, run loopgate on a"
	@echo "  ClickHouse server (--clickhouse HOST:9000) and point Grafana at it as deploy/grafana/README.md shows."
	$(BIN) dev $(ARGS)

.PHONY: services
services: ## install (cached) and start Apache Kafka, ClickHouse server and libchdb for the tests
	$(SERVICES) up

.PHONY: services-down
services-down: ## stop the local test services
	$(SERVICES) down

.PHONY: test
test: services ## install and start what the tests need, then run every test
	deploy/helm/helm.sh install
	$(WITH_SERVICES) LOOPGATE_HELM="$$(deploy/helm/helm.sh path)" $(GO) test -count=1 -timeout 20m ./...

.PHONY: deploy-check
deploy-check: ## lint and render the Helm chart, check compose and the Dockerfile against the binary's config loader (make test runs these too)
	deploy/helm/helm.sh install
	LOOPGATE_HELM="$$(deploy/helm/helm.sh path)" $(GO) test -count=1 -run 'TestHelmChart|TestComposeFile|TestDockerfile|TestStaticBuild' ./cmd/loopgate

.PHONY: test-cluster
test-cluster: ## run only the cluster tests (each starts its own ZooKeeper, two ClickHouse replicas, three Kafka brokers; make test runs them too)
	deploy/local/zookeeper.sh install
	deploy/local/kafka.sh install
	deploy/local/clickhouse.sh install
	$(GO) test -count=1 -timeout 15m -run 'TestCluster' ./warehouse ./cmd/loopgate

.PHONY: test-unit
test-unit: ## run the tests that need no services (integration tests skip)
	$(GO) test -count=1 -short ./...

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: fuzz
fuzz: ## run every fuzz target in the module (discovered) for FUZZTIME each (default 30s)
	GO=$(GO) ./scripts/fuzz.sh

.PHONY: bench
bench: ## run every scenario through every policy in the simulator and rewrite the tables in docs/BENCHMARKS.md
	deploy/local/chdb.sh install >/dev/null
	./scripts/bench-docs.sh

.PHONY: soak
soak: ## run the whole loop at steady load for 10 min and write its memory and goroutine series to docs/BENCHMARKS.md
	deploy/local/chdb.sh install >/dev/null
	GO=$(GO) ./scripts/soak.sh

.PHONY: bench-go
bench-go: services ## run the Go benchmarks (event path, writer, router) against the local services
	$(WITH_SERVICES) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m ./...

.PHONY: console-screenshot
console-screenshot: ## drive the console in headless Chromium against loopgate dev for a few minutes and rewrite docs/console.png
	deploy/local/chdb.sh install >/dev/null
	deploy/local/chromium.sh install
	LOOPGATE_CHDB_LIB="$$(deploy/local/chdb.sh path)" LOOPGATE_UPDATE_SCREENSHOT=1 $(GO) test -count=1 -run TestConsoleInBrowser -timeout 10m ./console

.PHONY: dashboards
dashboards: ## regenerate the Grafana dashboards' JSON (dashboards/json) from the Go code in dashboards/
	$(GO) generate ./dashboards

.PHONY: clean
clean: ## remove build output and local service data (not the download cache)
	-$(SERVICES) down
	rm -rf bin .var
