#!/usr/bin/env bash
# Runs fpgaops's benchmarks and prints their figures.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchmem -benchtime 1x ./... | grep -E '^(Benchmark|ok|PASS|FAIL|---)' || true
