# metasrv — see README.md. `make run` starts a local cluster, `make test` runs every test.
GO      ?= go
BIN     ?= bin
DATA    ?= data/local
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
BRANCH  ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.branch=$(BRANCH)

COMPOSE ?= $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo docker-compose; fi)
COMPOSE_FILE := deploy/compose/docker-compose.yml
COMPOSE_PROJECT ?= metasrv
COMPOSE_CERTS ?= data/compose-certs
COMPOSE_CURL := --cacert $(COMPOSE_CERTS)/ca.crt --cert $(COMPOSE_CERTS)/operator.crt --key $(COMPOSE_CERTS)/operator.key

.PHONY: all build build-linux image image-if-docker up down chaos run restart stop start test test-short lint bench bench-compare clean clean-data

all: build

## build: static binaries in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## build-linux: static linux/amd64 binaries for the images, in bin/linux/
build-linux:
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/linux/ ./cmd/metasrv ./cmd/datanode ./cmd/metactl

## image: the metasrv:dev and datanode:dev images (FROM scratch, nothing pulled; run as 65532)
image: build-linux
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/linux/ ./deploy/compose/pki-init
	mkdir -p $(BIN)/linux/empty
	docker build -q -f deploy/Dockerfile --target metasrv -t metasrv:dev .
	docker build -q -f deploy/Dockerfile --target datanode -t datanode:dev .

## up: 3 metasrv + 3 datanodes in containers, from a clean slate (ports 3002/3102/3202, 4001-4003 on
## 127.0.0.1), TLS everywhere, read-only root filesystems, no capabilities, no-new-privileges; the operator's
## client certificate and the CA land in $(COMPOSE_CERTS)/. `go run ./deploy/chaos -check-hardening
## -project metasrv` checks the running containers (no secret in argv or environment).
up: image
	$(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) down -v --remove-orphans >/dev/null 2>&1 || true
	$(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) up -d
	@rm -rf $(COMPOSE_CERTS) && mkdir -p $(COMPOSE_CERTS) && chmod 700 $(COMPOSE_CERTS)
	@pki=$$(docker ps -aq --filter label=com.docker.compose.project=$(COMPOSE_PROJECT) --filter label=com.docker.compose.service=pki); \
	  for f in client/operator.crt client/operator.key ca.crt; do docker cp $$pki:/data/$$f $(COMPOSE_CERTS)/ || exit 1; done
	@for i in $$(seq 60); do \
	    left=$$(docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' $$(docker ps -aq --filter label=com.docker.compose.project=$(COMPOSE_PROJECT)) | grep -v -e ' healthy$$' -e 'pki_1 exited$$' -e 'pki-1 exited$$'); \
	    [ -z "$$left" ] && break; sleep 1; \
	  done; \
	  if [ -n "$$left" ]; then echo "not healthy within 60s:"; echo "$$left"; exit 1; fi
	@echo "metasrv over HTTPS with the operator's client certificate (any of :3002, :3102, :3202):"
	@echo "  curl $(COMPOSE_CURL) -X POST 'https://localhost:3002/admin/maintenance?enable=true'"
	@echo "  curl $(COMPOSE_CURL) -X POST 'https://localhost:3002/admin/maintenance?enable=false'"
	@echo "  curl $(COMPOSE_CURL) -X GET https://localhost:3002/admin/maintenance"
	@echo "GreptimeDB's HTTP port (its routes only; same certificates): https://localhost:4000 (also :4100, :4200)"

## down: stop the containers and remove their network and volumes (the CA and certificates with them)
down:
	$(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) down -v --remove-orphans
	rm -rf $(COMPOSE_CERTS)

## chaos: the chaos suite on a Compose cluster of its own (project metasrv-chaos, ports 23002/23102/23202
## and 24001-24003 on 127.0.0.1), with TLS on as `make up`: kills, freezes, partitions, rolling restarts;
## porcupine-checked; before each scenario, every container is checked as hardened, with no secret in its
## argv or environment.
## CHAOS_FLAGS="-run partition" picks scenarios. Prints SKIPPED without a Docker Engine.
chaos: image-if-docker
	$(GO) run ./deploy/chaos $(CHAOS_FLAGS)

# image-if-docker: `make image` where a Docker Engine answers; elsewhere the
# chaos suite itself reports SKIPPED (and exits 0).
image-if-docker:
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; else echo "no Docker Engine: not building images"; fi

## run: a local 3-node cluster on loopback in the foreground (Ctrl-C stops it)
run: build
	deploy/local/run.sh $(BIN) $(DATA)

## restart / stop / start: one node of the running `make run` cluster (NODE=n1..n3 or dn1..dn3), with the
## flags and data dir it runs with; from another terminal. `make stop NODE=dn1` is a datanode failure to watch.
restart stop start:
	@deploy/local/run.sh $@ "$(NODE)" $(DATA)

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

## bench: maintenance write throughput/latency, leader failover and stability on real processes, and the cost of
## TLS (writes and failover on plaintext vs TLS clusters, alternating); ~3 min more for the tls section
bench: build
	$(GO) run ./cmd/metabench -bin $(BIN) -out docs/benchmarks.md

## bench-compare: side by side with etcd 3.4 (installs Debian's etcd-server if etcd is missing): writes, reads,
## leader failover, datanode failover reaction, 1000/5000 simulated datanodes, 1M-region snapshot; ~35 min
BENCH_COMPARE_FLAGS ?=
bench-compare: build
	$(GO) run ./cmd/metabench -bin $(BIN) -out docs/benchmarks.md \
	  -sections snapshot,compare,failover-compare,stability,reaction,scale \
	  -stability-args "--log-level info" -analysis cmd/metabench/analysis.md $(BENCH_COMPARE_FLAGS)

clean:
	rm -rf $(BIN)

clean-data:
	rm -rf $(DATA)
