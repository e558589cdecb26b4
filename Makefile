# dyno: `make run` starts the example app; CI runs `make test`, then
# `make test-kernel` and `make test-systemd`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# What make run starts; cmd/dyno's test of make run gives its own binary.
DYNO    ?= bin/dyno

.PHONY: build run test test-kernel test-systemd test-heroku-cli lint bench fuzz clean resident screenshots

# A static binary: the same file runs as the dyno init inside a dyno.
build:
	@echo "Building bin/dyno (the first build downloads and compiles its modules: a few minutes)..."
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/dyno ./cmd/dyno

# The resident init each dyno's Go init hands over to once the app runs
# (isolate/handover.go): built from isolate/resident/resident.c with gcc
# and committed, so that go build needs no C compiler. Rebuild and commit
# it after changing the source; TestResidentBinaryFromSource fails until
# then.
resident:
	sh isolate/resident/build.sh isolate/resident/resident-amd64
	$${CC:-gcc} --version | head -n 1 > isolate/resident/gcc-version

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

# The kernel-level tests (cgroup v2 limits enforced, R14, R15, pids.max,
# cgroup.kill, CLONE_INTO_CGROUP, the daemon's per-dyno stats) inside a
# user-mode Linux 6.1 kernel (Debian's user-mode-linux package), which has
# the cgroup v2 controllers a hybrid host lacks: as root, and as uid 65534
# in a cgroup delegated as systemd's Delegate=yes does. The binaries are
# static and built here; the guest sees this tree read-only, and its /tmp
# is its own, so they go to .cache/kernel. internal/kerneltest boots the
# guest, whose PID 1 is internal/kerneltest/init.sh, and fails when a run
# fails; without linux.uml it says why and skips. 2 to 9 minutes measured
# here on 2 shared cores, the builds included.
KERNEL_DIR ?= .cache/kernel
test-kernel: build
	mkdir -p $(KERNEL_DIR)
	cp bin/dyno $(KERNEL_DIR)/dyno
	CGO_ENABLED=0 $(GO) test -c -o $(KERNEL_DIR)/cgroup.test ./isolate/cgroup
	CGO_ENABLED=0 $(GO) test -c -o $(KERNEL_DIR)/isolate.test ./isolate
	CGO_ENABLED=0 $(GO) test -c -o $(KERNEL_DIR)/dyno.test ./cmd/dyno
	$(GO) run ./internal/kerneltest -bin $(KERNEL_DIR)

# docs/operations.md followed as written, under systemd 252 (this
# machine's, booted as PID 1 of the same user-mode Linux guest): the dyno
# user, `dyno daemon install --system --run-as dyno`, enable --now, an app
# deployed and scaled, dynos under dyno.service with their size's limits,
# R15 from a hog, kill -9 and a hung daemon (the watchdog) restarted with
# the formation back, stop with nothing left; then the user unit with
# lingering. internal/kerneltest/systemd-init.sh boots systemd into a
# oneshot unit running systemd-test.sh, the driver. The guest uses this
# machine's sudo, useradd, newuidmap, loginctl and dbus: it fails without
# them, and skips only without linux.uml. 2 to 6 minutes measured here on
# 2 shared cores; a guest still running after 15 fails.
SYSTEMD_DIR ?= .cache/systemd
test-systemd: build
	mkdir -p $(SYSTEMD_DIR)
	cp bin/dyno $(SYSTEMD_DIR)/dyno
	$(GO) run ./internal/kerneltest -systemd -timeout 15m -bin $(SYSTEMD_DIR)

# The official Heroku CLI against a real daemon, command by command
# (cmd/dyno/herokucli_test.go): heroku@11 is installed with npm into
# .cache/heroku-cli (395 MB, kept for the next run), and the test runs
# in a network namespace with loopback alone, so that nothing it starts
# reaches Heroku or the registry. Not part of make test, for the size.
# Without npm or unshare it says why and skips.
HEROKU_CLI_DIR ?= .cache/heroku-cli
test-heroku-cli:
	@command -v npm >/dev/null || { echo "SKIP test-heroku-cli: npm is not installed; it installs heroku@11"; exit 0; }; \
	command -v unshare >/dev/null && command -v ip >/dev/null || { echo "SKIP test-heroku-cli: unshare or ip is not installed; the test runs in a loopback-only network namespace"; exit 0; }; \
	if [ "$$(id -u)" = 0 ]; then ns="unshare -n"; else ns="unshare -rn"; fi; \
	$$ns true 2>/dev/null || { echo "SKIP test-heroku-cli: $$ns cannot make a network namespace here"; exit 0; }; \
	set -e; \
	mkdir -p bin $(HEROKU_CLI_DIR); \
	CGO_ENABLED=0 $(GO) build -o bin/dyno-herokucli ./cmd/dyno; \
	$(GO) test -c -o bin/dyno-herokucli.test ./cmd/dyno; \
	if [ ! -x $(HEROKU_CLI_DIR)/node_modules/.bin/heroku ]; then \
		echo "Installing heroku@11 into $(HEROKU_CLI_DIR) (395 MB, a minute or two)..."; \
		cd $(HEROKU_CLI_DIR); [ -f package.json ] || npm init -y >/dev/null; \
		npm install heroku@11 --no-audit --no-fund; cd $(CURDIR); \
	fi; \
	$$ns sh -c 'ip link set lo up && cd cmd/dyno && DYNO_TEST_BINARY="$$1" DYNO_HEROKU_CLI="$$2" exec "$$3" -test.run "^TestHerokuCLI$$" -test.v -test.count=1 -test.timeout 15m' \
		sh "$(CURDIR)/bin/dyno-herokucli" "$(CURDIR)/$(HEROKU_CLI_DIR)/node_modules/.bin/heroku" "$(CURDIR)/bin/dyno-herokucli.test"

lint:
	@bad=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

# Go benchmarks, then the end-to-end benchmarks through the dyno binary:
# log throughput and supervisor memory (beside node-foreman, nf, when
# installed), sandbox start-up (beside bwrap, when installed), and the
# daemon's router under wrk beside nginx (when both are installed; alone:
# go run ./internal/bench -dyno bin/dyno -only router). Static, like make
# build: the bench binary is the dynos' init in its sandbox rows.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	CGO_ENABLED=0 $(GO) run ./internal/bench -dyno bin/dyno

# The dashboard's pictures in docs/, for the README: the browser test
# (headless Chromium, a real daemon and app) saves each page it checks.
screenshots:
	DYNO_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestDashboardInABrowser$$' ./cmd/dyno

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
