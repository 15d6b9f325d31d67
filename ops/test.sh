#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, property tests, and the integration tests that
# start the real `corridor` binary and pay over gRPC.
#
# This is the test command of README.md; CI (.ci/run) calls it too. Tests that need PostgreSQL
# and Redis (the PostgreSQL ledger's, for one) get them from here: ops/services.sh starts them
# when they are not running (installing them if needed), so that this one command keeps working
# both where they already run and on a bare Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ops/services.sh
cargo test --workspace --all-targets --locked "$@"
