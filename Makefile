# Switchboard: make build | run | test | lint | bench
GO            ?= go
VERSION       ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -s -w -X github.com/switchboard-p2p/switchboard/pkg/daemon.Version=$(VERSION)
GOLANGCI_VERSION := v2.15.0
GOBIN         := $(shell $(GO) env GOPATH)/bin
GOLANGCI      := $(GOBIN)/golangci-lint
# deploy-test tools: helm via go install (a go-installed helm prints only "v3.22", so the
# pin is checked with go version -m); dockerfile-utils pinned in test/deploy/package-lock.json.
HELM_VERSION  := v3.22.0
HELM          := $(GOBIN)/helm

.PHONY: build run test unit lint lint-tool deploy-test deploy-tools bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# Starts every daemon on loopback with a generated dev secret, prints the client settings and
# streams the logs; Ctrl-C stops all three (cmd/devrun: needs nothing but Go).
run: build
	./bin/devrun

# Every test: lint, then the Go suite with the race detector (integration, interop and
# browser tests included; under CI=true a missing tool fails instead of skipping).
test: lint unit deploy-test

unit:
	$(GO) test -race -count=1 -timeout 30m ./...

lint: lint-tool
	$(GO) vet ./...
	$(GOLANGCI) run ./...

lint-tool:
	@if ! $(GOLANGCI) version 2>/dev/null | grep -q '$(patsubst v%,%,$(GOLANGCI_VERSION))'; then \
		echo "installing golangci-lint $(GOLANGCI_VERSION) with go install"; \
		GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION); \
	fi

# The deployment files (Dockerfile, docker-compose.yml, helm/switchboard), validated offline:
# test/deploy is a module of its own so Kubernetes and compose libraries stay out of go.mod.
deploy-test: deploy-tools lint-tool
	cd test/deploy && $(GO) vet ./... && $(GOLANGCI) run ./...
	cd test/deploy && HELM=$(HELM) $(GO) test -count=1 -timeout 20m ./...

deploy-tools:
	@if ! $(GO) version -m $(HELM) 2>/dev/null | grep -Eq 'mod[[:space:]]+helm.sh/helm/v3[[:space:]]+$(HELM_VERSION)[[:space:]]'; then \
		echo "installing helm $(HELM_VERSION) with go install"; \
		GOFLAGS= $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); \
	fi
	@if [ ! -x test/deploy/node_modules/.bin/dockerfile-utils ] && command -v npm >/dev/null; then \
		echo "installing dockerfile-utils (npm ci in test/deploy)"; \
		cd test/deploy && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	fi

# Benchmarks: the Go micro-benchmarks, then the load comparisons in bench/ (see docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
	./bench/run-all.sh

clean:
	rm -rf bin
