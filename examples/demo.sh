#!/usr/bin/env bash
# The fpgaops demo: validates the example fleet.
set -euo pipefail
cd "$(dirname "$0")/.."
./bin/fpgaops validate examples/fleet
