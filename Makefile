# fpgaops: build, test, demo and benchmarks.
GO      ?= go
BIN     := bin/fpgaops
PKGS    := ./...

# What `fpgaops version` says: git describe of the checkout, and its commit.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test demo bench fuzz vet clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/fpgaops

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)

demo: build
	./examples/demo.sh

bench:
	./scripts/bench.sh

# FUZZTIME per target; the GBS parser, the GBS/AOCX image parser and the
# fleet loader. Almost every input to the loader reaches new code in CUE
# and yaml.v3: minimising each for the default 60s leaves no time to fuzz.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./bitstream
	$(GO) test -run '^$$' -fuzz '^FuzzParseImage$$' -fuzztime $(FUZZTIME) ./bitstream
	$(GO) test -run '^$$' -fuzz '^FuzzAPI$$' -fuzztime $(FUZZTIME) ./fpga/agent
	$(GO) test -run '^$$' -fuzz '^FuzzWebhooks$$' -fuzztime $(FUZZTIME) ./reconcile/controller
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 50x ./spec

clean:
	rm -rf bin
