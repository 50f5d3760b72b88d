# metasrv — see README.md. `make run` starts a local cluster, `make test` runs every test.
GO      ?= go
BIN     ?= bin
DATA    ?= data/local
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build run test test-short lint bench clean clean-data

all: build

## build: static binaries in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## run: a local 3-node cluster on loopback in the foreground (Ctrl-C stops it)
run: build
	deploy/local/run.sh $(BIN) $(DATA)

## test: the whole test suite (unit tests with the race detector, end-to-end tests with real processes)
test:
	$(GO) test -race -count=1 -timeout 40m ./...

## test-short: unit tests only
test-short:
	$(GO) test -race -count=1 -short ./...

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: maintenance write throughput/latency and leader failover on real processes
bench: build
	$(GO) run ./cmd/metabench -bin $(BIN) -out docs/benchmarks.md

clean:
	rm -rf $(BIN)

clean-data:
	rm -rf $(DATA)
