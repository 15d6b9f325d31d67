#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, property tests, and the integration tests that
# start the real `corridor` binary and pay over gRPC.
#
# This is the test command of README.md; CI (.ci/run) calls it too. Later capabilities that need
# PostgreSQL and Redis start them from here, through a script under ops/, so that this one command
# keeps working both where they already run and on a bare Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets --locked "$@"
