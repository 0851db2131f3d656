# fpgaops: build, test, demo and benchmarks.
GO      ?= go
BIN     := bin/fpgaops
PKGS    := ./...

.PHONY: build test demo bench fuzz vet clean

build:
	$(GO) build -o $(BIN) ./cmd/fpgaops

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)

demo: build
	./examples/demo.sh

bench:
	./scripts/bench.sh

clean:
	rm -rf bin
