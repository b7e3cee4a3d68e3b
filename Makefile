# The two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO    ?= go
GOTEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: run test test-cluster faults bench generate check-generated vet services build tidy e2e-deps

## run: start the services if stopped, prepare the shards, and run the API and every worker
run: services
	$(GO) run ./cmd/devstack

## test: vet, check generated code, and run every test against the real services, then the
## Redis tests again against a Redis Cluster (test-cluster)
test: services vet check-generated e2e-deps
	$(GO) test $(GOTEST_FLAGS) ./...
	@$(MAKE) --no-print-directory test-cluster

# The tests test-cluster runs again on a cluster, besides all of stores/redis: a flash sale,
# live stock across processes, the caches and the rate limits, through checkout and the API.
CLUSTER_TESTS := ^(TestAPIRunsOnTheClusterInClusterMode|TestConcurrentBuyersGetExactlyTheStock|TestSameIdempotencyKeyGivesOneOrder|TestCancelReleasesExactlyOnce|TestUnitsThatComeBackAreSoldDespiteTheFastPath|TestStockFansOutAcrossAPIProcesses|TestOneRedisSubscriptionPerSalePerProcess|TestAReplicaDropsItsCachedResponsesWhenAnotherWrites|TestCachedProductSeesUpdates|TestRateLimitViewerConcurrentAcrossReplicas|TestRateLimitOrders|TestPlacedOrderIsPaidNotifiedAndCounted)$$

## test-cluster: the Redis tests against a local three-master Redis Cluster that each test
## binary starts on free ports (TEST_REDIS_CLUSTER=1; set it to host:port,... for another)
test-cluster: services
	TEST_REDIS_CLUSTER=$${TEST_REDIS_CLUSTER:-1} $(GO) test $(GOTEST_FLAGS) ./stores/redis/
	TEST_REDIS_CLUSTER=$${TEST_REDIS_CLUSTER:-1} $(GO) test $(GOTEST_FLAGS) -run '$(CLUSTER_TESTS)' ./checkout/ ./e2e/

## faults: only the fault drills (make test runs them too): a flash sale through each fault,
## each drill's report line (drill: name=...) shown; the API's own log lines are left out
faults: services
	set -o pipefail; $(GO) test $(GOTEST_FLAGS) -run '^TestDrill' -v ./e2e | grep -vE '^ +logs\.go:[0-9]+: |^=== (PAUSE|CONT|NAME)'

## e2e-deps: the browser test's Node packages, and Chromium when it is missing
e2e-deps:
	npm ci --prefix e2e/browser --no-audit --no-fund
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
	  else sudo apt-get update && sudo apt-get install -y chromium; fi; \
	fi

## bench: the benchmark suite, each figure beside its baseline from the same run
bench: services
	$(GO) run ./cmd/bench

## generate: regenerate gqlgen's output from schema.graphqls
generate:
	$(GO) tool gqlgen generate

## check-generated: fail when the committed generated code is not what generate produces
check-generated:
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	  cp -r graph/generated graph/model resolvers $$tmp/ && \
	  $(GO) tool gqlgen generate && \
	  if ! diff -r $$tmp/generated graph/generated >/dev/null || ! diff -r $$tmp/model graph/model >/dev/null \
	     || ! diff -r $$tmp/resolvers resolvers >/dev/null; then \
	    echo "generated code is stale: run 'make generate' and commit the result" >&2; \
	    rm -rf graph/generated graph/model resolvers; cp -r $$tmp/generated $$tmp/model graph/; cp -r $$tmp/resolvers .; \
	    exit 1; \
	  fi

vet:
	$(GO) vet ./...

services:
	@bash deploy/local/services.sh

build:
	$(GO) build ./...
