#!/usr/bin/env bash
# Scale-out on one machine: the same cross-border load (HKD <-> CNY, FX, screening, the feed)
# through 1, 2 and 3 `corridor serve` replicas sharing PostgreSQL (journal, receipts, feed, and
# e-HKD and e-CNY as PostgreSQL ledgers behind two ledger nodes) and Redis (idempotency keys,
# quote locks, rates). The client spreads its connections over the replicas. Prints one table,
# each run as a ratio to one replica, and writes the JSON reports and summary.md under --out.
#
#   bash loadtest/scale-out.sh              # 20-second runs
#   bash loadtest/scale-out.sh --quick      # 5-second runs
#
# On one machine the replicas share its cores with the database, Redis, the ledger nodes and the
# client: this shows what a replica costs and that replicas work together, not the throughput of
# replicas on machines of their own.
set -euo pipefail

cd "$(dirname "$0")/.."
readonly ROOT="$PWD"

duration=20
warmup=3
concurrency=64
connections=6
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --quick) duration=5; warmup=1; shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "scale-out.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
done
out="${out:-target/scale-out/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Above bench.sh's ports, below Linux's ephemeral range.
readonly PORT_BASE=24400
readonly POSTGRES_ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"
readonly CORRIDOR="$ROOT/target/release/corridor"
readonly LOADTEST="$ROOT/target/release/corridor-loadtest"
# shellcheck source=loadtest/lib.sh
source "$ROOT/loadtest/lib.sh"

step "building (release)"
cargo build --release --locked -p corridor-router -p corridor-loadtest
step "services (PostgreSQL, Redis)"
bash ops/services.sh
{
  echo "date:       $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine:    $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
  echo "commit:     $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
  echo "client:     closed loop, $concurrency in flight over $connections HTTP/2 connections spread over the replicas, ${warmup} s warm-up + ${duration} s measured, plain text"
} | tee "$out/machine.txt" >&2

fresh_database() {
  psql -q "$POSTGRES_ADMIN_URL" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>&1 | grep -v "does not exist, skipping" >&2 || true
}

closed=(--mode closed --concurrency "$concurrency" --duration "$duration")
cases=()
for replicas in 1 2 3; do
  fresh_database corridor_scale
  fresh_database corridor_scale_hkd
  fresh_database corridor_scale_cny
  first_port=$((PORT_BASE + 10))
  node_pids=()
  for spec in "e-hkd HKD HK bank-hk $((PORT_BASE + 1)) corridor_scale_hkd" "e-cny CNY CN bank-cn $((PORT_BASE + 2)) corridor_scale_cny"; do
    read -r ledger currency jurisdiction bank node_port database <<< "$spec"
    node_config "$ledger" "$currency" "$jurisdiction" "$bank" "$node_port"
    "$CORRIDOR" ledger-node --insecure-dev --config "$out/d-node-$ledger.toml" --backend postgres \
      --database-url "postgres://postgres@127.0.0.1:5432/$database" \
      --coordinator "127.0.0.1:$first_port" > "$out/node-$ledger-$replicas.out" 2>&1 &
    node_pids+=($!)
    pids+=($!)
    wait_for "$out/node-$ledger-$replicas.out" "listening"
  done
  targets=()
  router_pids=()
  for replica in $(seq 1 "$replicas"); do
    port=$((first_port + replica - 1))
    network_config "$out/replica-$replica.toml" "$port" "
[storage]
backend = \"postgres\"
database_url = \"postgres://postgres@127.0.0.1:5432/corridor_scale\"
redis_url = \"redis://127.0.0.1:6379\""
    # One feed signing key for the network, as replicas on several machines would share it.
    sed -i -e "/^\[feed\]$/a signing_key_file = \"$out/feed-signing-key.pk8\"" \
      -e "/^id = \"e-hkd\"$/a endpoint = \"http://127.0.0.1:$((PORT_BASE + 1))\"" \
      -e "/^id = \"e-cny\"$/a endpoint = \"http://127.0.0.1:$((PORT_BASE + 2))\"" "$out/replica-$replica.toml"
    start_router "replicas-$replicas-$replica" "$out/replica-$replica.toml"
    router_pids+=("$router_pid")
    targets+=("http://127.0.0.1:$port")
  done
  target="$(IFS=,; echo "${targets[*]}")"
  load "replicas-$replicas" "$replicas replica(s), PostgreSQL + Redis, PostgreSQL ledgers" "$target" "${router_pids[0]}" \
    "${closed[@]}" --mix-file loadtest/mixes/cross-border.toml
  for pid in "${router_pids[@]}" "${node_pids[@]}"; do stop "$pid"; done
  cases+=("$out/replicas-$replicas.json")
done
for database in corridor_scale corridor_scale_hkd corridor_scale_cny; do
  psql -q "$POSTGRES_ADMIN_URL" -c "DROP DATABASE IF EXISTS $database"
done

step "results"
"$LOADTEST" compare --baseline "$out/replicas-1.json" --markdown "$out/summary.md" "${cases[@]}"
cat "$out/machine.txt"
echo "reports and summary.md in $out (server memory is the first replica's)"
