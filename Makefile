# fpgaops: build, test, demo and benchmarks.
GO      ?= go
BIN     := bin/fpgaops
PKGS    := ./...

.PHONY: build test demo bench fuzz vet clean

build:
	$(GO) build -o $(BIN) ./cmd/fpgaops

# test runs every test, then each fuzz target briefly: CI runs it.
test:
	GO=$(GO) ./scripts/kube-binaries.sh
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)
	$(MAKE) fuzz FUZZTIME=5s

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
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./bitstream
	$(GO) test -run '^$$' -fuzz '^FuzzParseImage$$' -fuzztime $(FUZZTIME) ./bitstream
	$(GO) test -run '^$$' -fuzz '^FuzzAPI$$' -fuzztime $(FUZZTIME) ./fpga/agent
	$(GO) test -run '^$$' -fuzz '^FuzzWebhooks$$' -fuzztime $(FUZZTIME) ./reconcile/controller
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 50x ./spec
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) ./reconcile/planfile

clean:
	rm -rf bin
