#!/usr/bin/env bash
# The crash test, for humans: a router and two ledger-node processes settle a stream of payments
# while the router is killed with SIGKILL four times and one ledger node once; then the ledgers
# are checked for conservation, all-or-nothing payments, nothing left in doubt, and exactly-once
# idempotency keys. Prints how many kills, payments and in-flight payments at each kill.
#
# The same test runs in CI as part of ops/test.sh (router/tests/fault.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked -p corridor-router --test fault -- --nocapture "$@"
