#!/usr/bin/env bash
# How much simulated cluster time one real minute covers (issue #10 item 5): the release
# `moldau-sim` soaks random seeds for MINUTES (default 5) and prints runs, failures and
# simulated hours per real minute. Run it on a quiet machine: it uses one core.
#
#   bash bench/sim.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-5}
cargo build --release -p moldau-sim
target/release/moldau-sim --minutes "$minutes" | grep -v '^  '
