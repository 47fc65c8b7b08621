# Switchboard: make build | run | test | lint | bench
GO            ?= go
VERSION       ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -s -w -X github.com/switchboard-p2p/switchboard/pkg/daemon.Version=$(VERSION)
GOLANGCI_VERSION := v2.15.0
GOBIN         := $(shell $(GO) env GOPATH)/bin
GOLANGCI      := $(GOBIN)/golangci-lint

.PHONY: build run test unit lint lint-tool bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# Starts every daemon on loopback with a generated dev secret and prints the client settings.
run: build
	./scripts/run.sh

# Every test: lint, then the Go suite with the race detector (integration, interop and
# browser tests included; under CI=true a missing tool fails instead of skipping).
test: lint unit

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

# Benchmarks: the Go micro-benchmarks, then the load comparisons in bench/ (see docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
	./bench/run-all.sh

clean:
	rm -rf bin
