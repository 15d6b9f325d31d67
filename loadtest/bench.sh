#!/usr/bin/env bash
# The one-run benchmark: on this machine, in one run, with the same client settings,
#   (a) the ceiling: a trivial tonic echo service (corridor-loadtest echo-server);
#   (b) Corridor on the embedded default (durable journal and ledgers, fsync on), cross-border
#       payments HKD <-> CNY with FX, sanctions screening and the compliance feed;
#   (c) the same with the PostgreSQL journal and Redis idempotency keys;
#   (d) the same with e-HKD and e-CNY in two out-of-process ledger nodes;
# then (b) again in open loop at half of its measured maximum (the latency target is stated
# there), and the size series: 1,000 vs 1,000,000 accounts, 4 vs 16 ledgers. It prints one table
# with throughput, p50/p99 and the server's peak memory of each, each as a ratio to (a), and
# writes the JSON reports, the table (summary.md) and the latency plots under --out.
#
#   bash loadtest/bench.sh                  # the whole benchmark, about 7 minutes
#   bash loadtest/bench.sh --quick          # 5-second runs, no size series (a smoke run)
#   bash loadtest/bench.sh --soak 600       # and a 10-minute soak at half load, server memory sampled
#
# Every case runs closed loop (--concurrency requests in flight over --connections HTTP/2
# connections, plain text: every server runs --insecure-dev, so the ceiling and Corridor pay the
# same transport). PostgreSQL and Redis are started (or installed) by ops/services.sh; (c) uses a
# database of its own, dropped and created for each run. Nothing else is changed on the machine.
set -euo pipefail

cd "$(dirname "$0")/.."
readonly ROOT="$PWD"

duration=20
warmup=3
concurrency=64
connections=4
scaling=1
soak=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --quick) duration=5; warmup=1; scaling=0; shift ;;
    --no-scaling) scaling=0; shift ;;
    --soak) soak="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
done
out="${out:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Below Linux's ephemeral port range (32768-60999), so no client socket takes one first.
readonly PORT_BASE=24300
readonly DATABASE=corridor_bench
readonly POSTGRES_ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"

# shellcheck source=loadtest/lib.sh
source "$ROOT/loadtest/lib.sh"

step "building (release)"
cargo build --release --locked -p corridor-router -p corridor-loadtest
readonly CORRIDOR="$ROOT/target/release/corridor"
readonly LOADTEST="$ROOT/target/release/corridor-loadtest"

step "services (PostgreSQL, Redis)"
bash ops/services.sh

{
  echo "date:       $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine:    $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
  echo "commit:     $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
  echo "client:     closed loop, $concurrency in flight over $connections HTTP/2 connections, ${warmup} s warm-up + ${duration} s measured, plain text"
} | tee "$out/machine.txt" >&2

closed=(--mode closed --concurrency "$concurrency" --duration "$duration")
mix=(--mix-file loadtest/mixes/cross-border.toml)

# (a) the ceiling
port=$PORT_BASE
"$LOADTEST" echo-server --listen "127.0.0.1:$port" > "$out/a-server.log" 2>&1 &
echo_pid=$!
pids+=("$echo_pid")
wait_for "$out/a-server.log" "echo-server listening on"
load a "(a) gRPC ceiling: tonic echo" "http://127.0.0.1:$port" "$echo_pid" --service echo "${closed[@]}" "${mix[@]}"
stop "$echo_pid"

# (b) embedded
port=$((PORT_BASE + 1))
network_config "$out/b.toml" "$port"
start_router b "$out/b.toml"
load b "(b) embedded, fsync on" "http://127.0.0.1:$port" "$router_pid" "${closed[@]}" "${mix[@]}"
stop "$router_pid"

# (c) PostgreSQL + Redis
port=$((PORT_BASE + 2))
psql -q "$POSTGRES_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DATABASE" -c "CREATE DATABASE $DATABASE"
network_config "$out/c.toml" "$port" "
[storage]
backend = \"postgres\"
database_url = \"postgres://postgres@127.0.0.1:5432/$DATABASE\"
redis_url = \"redis://127.0.0.1:6379\""
start_router c "$out/c.toml"
load c "(c) PostgreSQL + Redis" "http://127.0.0.1:$port" "$router_pid" "${closed[@]}" "${mix[@]}"
stop "$router_pid"
psql -q "$POSTGRES_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DATABASE"

# (d) e-HKD and e-CNY in ledger nodes (memory backend, durable operation log), the rest embedded
port=$((PORT_BASE + 3))
node_pids=()
for spec in "e-hkd HKD HK bank-hk $((PORT_BASE + 4))" "e-cny CNY CN bank-cn $((PORT_BASE + 5))"; do
  read -r ledger currency jurisdiction bank node_port <<< "$spec"
  node_config "$ledger" "$currency" "$jurisdiction" "$bank" "$node_port"
  rm -f "$out/d-$ledger.log"
  "$CORRIDOR" ledger-node --insecure-dev --config "$out/d-node-$ledger.toml" --data-file "$out/d-$ledger.log" \
    --coordinator "127.0.0.1:$port" > "$out/d-node-$ledger.out" 2>&1 &
  node_pids+=($!)
  pids+=($!)
  wait_for "$out/d-node-$ledger.out" "listening"
done
network_config "$out/d.toml" "$port"
sed -i -e "/^id = \"e-hkd\"$/a endpoint = \"http://127.0.0.1:$((PORT_BASE + 4))\"" \
  -e "/^id = \"e-cny\"$/a endpoint = \"http://127.0.0.1:$((PORT_BASE + 5))\"" "$out/d.toml"
start_router d "$out/d.toml"
load d "(d) two ledger nodes" "http://127.0.0.1:$port" "$router_pid" "${closed[@]}" "${mix[@]}"
stop "$router_pid"
for pid in "${node_pids[@]}"; do stop "$pid"; done

# (b) at half of its maximum, open loop: the latency a payment sees below saturation.
b_rate="$("$LOADTEST" report-field "$out/b.json" /results/throughput_per_s)"
half_rate=$(( ${b_rate%.*} / 2 ))
port=$((PORT_BASE + 1))
start_router b-half "$out/b.toml"
load b-half "(b) embedded, open loop at half its maximum ($half_rate/s)" "http://127.0.0.1:$port" "$router_pid" \
  --mode open --rate "$half_rate" --duration "$duration" "${mix[@]}"
stop "$router_pid"

cases=("$out/a.json" "$out/b.json" "$out/c.json" "$out/d.json" "$out/b-half.json")

if [ "$scaling" = 1 ]; then
  # Size series: the same cross-border load on networks that differ only in size.
  # Accounts: bank-hk and bank-cn each hold a series of N/2 wallets, paid between at random.
  for accounts in 1000 1000000; do
    half=$((accounts / 2))
    width=${#half}
    first="$(printf '%0*d' "$width" 1)"
    port=$((PORT_BASE + 6))
    network_config "$out/accounts-$accounts.toml" "$port"
    sed -i \
      -e "/^id = \"bank-hk\"$/a account_series = [{ ledger = \"e-hkd\", prefix = \"bank-hk.s\", count = $half, opening_balance = \"100000.00\" }]" \
      -e "/^id = \"bank-cn\"$/a account_series = [{ ledger = \"e-cny\", prefix = \"bank-cn.s\", count = $half, opening_balance = \"100000.00\" }]" \
      "$out/accounts-$accounts.toml"
    sed -e "s/bank-hk\.w{01\.\.06}/bank-hk.s{$first..$half}/" -e "s/bank-cn\.w{01\.\.06}/bank-cn.s{$first..$half}/" \
      loadtest/mixes/cross-border.toml > "$out/accounts-$accounts-mix.toml"
    start_router "accounts-$accounts" "$out/accounts-$accounts.toml"
    load "accounts-$accounts" "size: $accounts accounts" "http://127.0.0.1:$port" "$router_pid" \
      "${closed[@]}" --mix-file "$out/accounts-$accounts-mix.toml"
    stop "$router_pid"
    cases+=("$out/accounts-$accounts.json")
  done
  # Ledgers: a ring of N ledgers, each with a bank of six wallets, one provider quoting every
  # neighbouring pair; payments go one hop around the ring, both ways.
  currencies=(CNY HKD THB AED SGD USD EUR GBP CHF AUD CAD INR MYR NZD SEK NOK)
  countries=(CN HK TH AE SG US DE GB CH AU CA IN MY NZ SE NO)
  for ledgers in 4 16; do
    port=$((PORT_BASE + 7))
    config="$out/ledgers-$ledgers.toml"
    mixfile="$out/ledgers-$ledgers-mix.toml"
    {
      printf '[server]\nlisten = "127.0.0.1:%s"\n\n[fx]\nrate_max_age_ms = 86400000\n\n' "$port"
      printf '[sanctions]\njurisdictions = [%s]\nhit_min = 920\npossible_min = 850\n' \
        "$(printf '"%s", ' "${countries[@]:0:$ledgers}" | sed 's/, $//')"
      for i in $(seq 0 $((ledgers - 1))); do
        printf '\n[[ledgers]]\nid = "l%02d"\ncurrency = "%s"\njurisdiction = "%s"\n' "$i" "${currencies[$i]}" "${countries[$i]}"
      done
      for i in $(seq 0 $((ledgers - 1))); do
        printf '\n[[participants]]\nid = "bank-%02d"\nrole = "bank"\n' "$i"
        printf 'account_series = [{ ledger = "l%02d", prefix = "w", count = 6, opening_balance = "5000000.00" }]\n' "$i"
      done
      printf '\n[[participants]]\nid = "lp-ring"\nrole = "liquidity_provider"\naccounts = [\n'
      for i in $(seq 0 $((ledgers - 1))); do
        printf '  { address = "l%02d/lp-ring", opening_balance = "900000000.00" },\n' "$i"
      done
      printf ']\n'
      for i in $(seq 0 $((ledgers - 1))); do
        j=$(( (i + 1) % ledgers ))
        printf '\n[[rates]]\nprovider = "lp-ring"\npair = "%s/%s"\nbid = "0.9990"\nask = "1.0010"\n' \
          "${currencies[$i]}" "${currencies[$j]}"
      done
    } > "$config"
    {
      printf '# A ring of %s ledgers (generated by loadtest/bench.sh).\n[names]\n' "$ledgers"
      for i in $(seq 0 $((ledgers - 1))); do printf '%s = ["Li Wei", "Chan Tai Man", "Tan Mei Ling"]\n' "${countries[$i]}"; done
      for i in $(seq 0 $((ledgers - 1))); do
        j=$(( (i + 1) % ledgers ))
        for pair in "$i $j" "$j $i"; do
          read -r from to <<< "$pair"
          printf '\n[[kind]]\nname = "ring"\nweight = 100\nparticipant = "bank-%02d"\n' "$from"
          printf 'payer = "l%02d/w{1..6}"\npayee = "l%02d/w{1..6}"\namount = "10.00..500.00"\ncurrency = "%s"\n' \
            "$from" "$to" "${currencies[$from]}"
          printf 'originator = { country = "%s", address = "{1..199} Ring Road" }\nbeneficiary = { country = "%s" }\n' \
            "${countries[$from]}" "${countries[$to]}"
        done
      done
    } > "$mixfile"
    start_router "ledgers-$ledgers" "$config"
    load "ledgers-$ledgers" "size: $ledgers ledgers" "http://127.0.0.1:$port" "$router_pid" "${closed[@]}" --mix-file "$mixfile"
    stop "$router_pid"
    cases+=("$out/ledgers-$ledgers.json")
  done
fi

if [ "$soak" -gt 0 ]; then
  port=$((PORT_BASE + 1))
  start_router soak "$out/b.toml"
  load soak "soak: (b) open loop at $half_rate/s for $soak s" "http://127.0.0.1:$port" "$router_pid" \
    --mode open --rate "$half_rate" --duration "$soak" "${mix[@]}"
  stop "$router_pid"
  cases+=("$out/soak.json")
fi

step "results"
"$LOADTEST" plot --out "$out/latency.svg" --title "Latency by percentile ($(nproc) cores)" \
  "$out/a.json" "$out/b.json" "$out/c.json" "$out/d.json" "$out/b-half.json"
"$LOADTEST" compare --baseline "$out/a.json" --markdown "$out/summary.md" "${cases[@]}"
cat "$out/machine.txt"
echo "reports, plots and summary.md in $out"
