# dyno: `make run` starts the example app, `make test` is what CI runs.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# What make run starts; cmd/dyno's test of make run gives its own binary.
DYNO    ?= bin/dyno

.PHONY: build run test lint bench fuzz clean

# A static binary: the same file runs as the dyno init inside a dyno.
build:
	@echo "Building bin/dyno (the first build downloads and compiles its modules: a few minutes)..."
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/dyno ./cmd/dyno

# The example app (web, worker, clock) under `dyno start`; Ctrl-C stops it.
# dyno is make's own child, with no shell between (-f, not cd &&): on
# Ctrl-C a shell dies of SIGINT at once, and make reports a child killed
# by a signal as "make: *** [...] Interrupt"; dyno instead stops its
# processes and exits 0, and make then ends quietly.
run: build
	$(GO) build -o examples/hello/bin/hello ./examples/hello
	@echo "Starting examples/hello under dyno start: http://localhost:5000 (Ctrl-C stops it)"
	$(DYNO) start -f examples/hello/Procfile

test: lint
	$(GO) test -count=1 ./...

lint:
	@bad=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

# Go benchmarks, then the end-to-end benchmarks through the dyno binary:
# log throughput and supervisor memory (beside node-foreman, nf, when
# installed), and sandbox start-up (beside bwrap, when installed). Static,
# like make build: the bench binary is the dynos' init in its sandbox rows.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	CGO_ENABLED=0 $(GO) run ./internal/bench -dyno bin/dyno

# A short run of every fuzz target.
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseProcfile$$' -fuzztime $(FUZZTIME) ./slug
	$(GO) test -run '^$$' -fuzz '^FuzzParseFormation$$' -fuzztime $(FUZZTIME) ./supervisor/project
	$(GO) test -run '^$$' -fuzz '^FuzzParseEnv$$' -fuzztime $(FUZZTIME) ./supervisor/project
	$(GO) test -run '^$$' -fuzz '^FuzzSplitter$$' -fuzztime $(FUZZTIME) ./supervisor/logmux
	$(GO) test -run '^$$' -fuzz '^FuzzReadAll$$' -fuzztime $(FUZZTIME) ./ledger
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./ledger
	$(GO) test -run '^$$' -fuzz '^FuzzCanonical$$' -fuzztime $(FUZZTIME) ./ledger
	$(GO) test -run '^$$' -fuzz '^FuzzUnpack$$' -fuzztime $(FUZZTIME) ./slug
	$(GO) test -run '^$$' -fuzz '^FuzzParseBytes$$' -fuzztime $(FUZZTIME) ./isolate/cgroup
	$(GO) test -run '^$$' -fuzz '^FuzzAPIRequests$$' -fuzztime $(FUZZTIME) ./supervisor/daemon
	$(GO) test -run '^$$' -fuzz '^FuzzLogLine$$' -fuzztime $(FUZZTIME) ./supervisor/router
	$(GO) test -run '^$$' -fuzz '^FuzzRequestID$$' -fuzztime $(FUZZTIME) ./supervisor/router
	$(GO) test -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $(FUZZTIME) ./supervisor/router

clean:
	rm -rf bin examples/hello/bin
