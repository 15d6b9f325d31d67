# Shared by loadtest/bench.sh and loadtest/scale-out.sh (sourced, not run): process bookkeeping,
# waiting for servers, configs derived from ops/config/network.toml, one measured run.
# Expects: ROOT, CORRIDOR, LOADTEST, out, connections, warmup.

step() { printf '\n== %s\n' "$*" >&2; }

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# wait_for LOG TEXT: until the log shows TEXT (the server is listening), at most 60 s.
wait_for() {
  local log="$1" text="$2"
  for _ in $(seq 600); do
    grep -q "$text" "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$(basename "$0"): no \"$text\" in $log after 60 s:" >&2
  tail -n 20 "$log" >&2
  exit 1
}

# A copy of the demo network listening on PORT, with extra TOML lines appended.
network_config() {
  local path="$1" port="$2" extra="${3:-}"
  sed "s/^listen = .*/listen = \"127.0.0.1:$port\"/" ops/config/network.toml > "$path"
  printf '%s\n' "$extra" >> "$path"
}

# start_router NAME CONFIG: serves CONFIG with data in $out/NAME-data; sets router_pid.
start_router() {
  local name="$1" config="$2"
  rm -rf "$out/$name-data"
  "$CORRIDOR" serve --insecure-dev --config "$config" --data-dir "$out/$name-data" > "$out/$name-server.log" 2>&1 &
  router_pid=$!
  pids+=("$router_pid")
  wait_for "$out/$name-server.log" "corridor listening on"
}

stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# load NAME LABEL TARGET SERVER_PID [extra run options]: one measured run, its report in NAME.json.
load() {
  local name="$1" label="$2" target="$3" server_pid="$4"
  shift 4
  step "$label"
  "$LOADTEST" run --target "$target" --connections "$connections" --warmup "$warmup" \
    --label "$label" --server-pid "$server_pid" --json "$out/$name.json" --plot "$out/$name.svg" "$@" \
    | tee "$out/$name.txt"
}

# node_config LEDGER CURRENCY JURISDICTION BANK PORT: a ledger node's config in $out, with the
# accounts of ops/config/network.toml's wallets, providers and fee account on that ledger.
node_config() {
  local ledger="$1" currency="$2" jurisdiction="$3" bank="$4" node_port="$5"
  {
    printf '[ledger]\nid = "%s"\ncurrency = "%s"\njurisdiction = "%s"\n\n[node]\nlisten = "127.0.0.1:%s"\n' \
      "$ledger" "$currency" "$jurisdiction" "$node_port"
    for wallet in 01 02 03 04 05 06; do
      printf '\n[[accounts]]\nname = "%s.w%s"\nopening_balance = "5000000.00"\n' "$bank" "$wallet"
    done
    printf '\n[[accounts]]\nname = "lp-alpha"\nopening_balance = "80000000.00"\n'
    printf '\n[[accounts]]\nname = "lp-beta"\nopening_balance = "80000000.00"\n'
    printf '\n[[accounts]]\nname = "lp-gamma"\nopening_balance = "50000000.00"\n'
    printf '\n[[accounts]]\nname = "corridor.fees"\nopening_balance = "0.00"\n'
  } > "$out/d-node-$ledger.toml"
}
