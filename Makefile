# fpgaops: build, test, install, package, demo and benchmarks.
GO      ?= go
BIN     := bin/fpgaops
PKGS    := ./...

# What `fpgaops version` says: git describe of the checkout, and its commit.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# Where `make install` puts things: PREFIX=/usr for a system's own copy,
# DESTDIR to stage them for a package.
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DOCDIR      ?= $(PREFIX)/share/doc/fpgaops
SYSCONFDIR  ?= /etc

# The Debian package: nfpm at a pinned version, run with go run so that
# nothing needs installing. Debian versions start with a digit.
NFPM        := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DEB_VERSION ?= $(shell echo '$(VERSION)' | sed -E 's/^v//; s/^([^0-9])/0.0.0~git\1/; s/-/~/g')
ARCH        ?= $(shell $(GO) env GOARCH)
DEBDIR      ?= bin

.PHONY: build test deps demo bench fuzz vet clean install deb

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/fpgaops

# deps installs what the integration tests start (as root), or names it.
deps:
	./scripts/deps.sh

# test runs every test, then each fuzz target briefly: CI runs it.
test: deps
	GO=$(GO) ./scripts/kube-binaries.sh
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)
	$(MAKE) fuzz FUZZTIME=5s

# install puts the binary, the systemd units (their ExecStart pointed at
# BINDIR), the controller's sysusers entry and the docs under PREFIX, and
# the units' flag files under SYSCONFDIR/default unless they exist.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/fpgaops
	for u in fpgaops fpgaops-agent; do \
		sed 's|/usr/bin/fpgaops|$(BINDIR)/fpgaops|' packaging/systemd/$$u.service > $(BIN).$$u.service && \
		install -D -m 0644 $(BIN).$$u.service $(DESTDIR)$(UNITDIR)/$$u.service && rm -f $(BIN).$$u.service; \
		[ -e $(DESTDIR)$(SYSCONFDIR)/default/$$u ] || install -D -m 0644 packaging/default/$$u $(DESTDIR)$(SYSCONFDIR)/default/$$u; \
	done
	install -D -m 0644 packaging/sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/fpgaops.conf
	install -d $(DESTDIR)$(DOCDIR)
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

# deb builds DEBDIR/fpgaops_<version>_<arch>.deb from a static binary.
# deb packages bin/fpgaops, the path packaging/nfpm.yaml names, whatever
# BIN says.
deb: export CGO_ENABLED = 0
deb:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/fpgaops ./cmd/fpgaops
	mkdir -p $(DEBDIR)
	ARCH=$(ARCH) DEB_VERSION='$(DEB_VERSION)' $(GO) run $(NFPM) package -f packaging/nfpm.yaml -p deb -t $(DEBDIR)/

demo: build
	./examples/demo.sh

bench:
	./scripts/bench.sh

# FUZZTIME per target: the GBS parser, the GBS/AOCX image parser, the
# agent's API, the controller's webhooks, the fleet loader and the saved
# plan reader. Almost every input to the loader reaches new code in CUE
# and yaml.v3: minimising each for the default 60s leaves no time to fuzz.
FUZZTIME ?= 30s
fuzz:
	GO=$(GO) ./scripts/fuzz.sh FuzzParse ./bitstream $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz.sh FuzzParseImage ./bitstream $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz.sh FuzzAPI ./fpga/agent $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz.sh FuzzWebhooks ./reconcile/controller $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz.sh FuzzLoad ./spec $(FUZZTIME) -fuzzminimizetime 50x
	GO=$(GO) ./scripts/fuzz.sh FuzzRead ./reconcile/planfile $(FUZZTIME)

clean:
	rm -rf bin
