#!/usr/bin/env bash
# Makes sure the services the tests talk to are up, and then returns 0:
#   - PostgreSQL on 127.0.0.1:5432, user `postgres` with trust authentication from 127.0.0.1 and ::1;
#   - Redis on 127.0.0.1:6379 (one this script starts keeps nothing on disk).
#
# Idempotent. For each service, in order:
#   1. already answering: does nothing (where the services already run, as on the developers'
#      machines and CI, this script changes nothing);
#   2. installed but stopped: starts it (PostgreSQL: Debian's cluster `main` of the newest
#      installed version, created if there is none);
#   3. not installed: installs it from Debian's packages (apt-get), configures and starts it.
# It waits, up to SERVICE_READY_WAIT_SECONDS_MAX, for a service it started to answer.
#
# It deliberately does not touch a service that answers, never restarts or stops a running
# server, and does not tune or secure anything: trust authentication is for a test machine only.
# It prints one line per service saying what it did; details of a failure go to stderr.
set -euo pipefail

readonly POSTGRES_HOST=127.0.0.1
readonly POSTGRES_PORT=5432
readonly REDIS_HOST=127.0.0.1
readonly REDIS_PORT=6379
# How long a service that this script started may take to answer.
readonly SERVICE_READY_WAIT_SECONDS_MAX=60
# How long one probe of a port may take before it counts as "not answering".
readonly PROBE_TIMEOUT_SECONDS=3

# Everything the tools this script runs print goes here, to show on failure only.
command_log="$(mktemp -t corridor-services.XXXXXX)"
trap 'rm -f "$command_log"' EXIT

fail() {
  echo "ops/services.sh: $*" >&2
  if [ -s "$command_log" ]; then
    echo "--- output of the last commands:" >&2
    tail -n 40 "$command_log" >&2
  fi
  exit 1
}

# Runs a command as root: directly when we are root, else through sudo when there is one.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    fail "need root (or sudo) to run: $*"
  fi
}

# Whether something accepts TCP connections on host:port, without any client tool.
tcp_answers() {
  # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
  timeout "$PROBE_TIMEOUT_SECONDS" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

postgres_answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -t "$PROBE_TIMEOUT_SECONDS"
  else
    tcp_answers "$POSTGRES_HOST" "$POSTGRES_PORT"
  fi
}

redis_answers() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(timeout "$PROBE_TIMEOUT_SECONDS" redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
  else
    # Without redis-cli, speak the protocol: PING answers +PONG.
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    timeout "$PROBE_TIMEOUT_SECONDS" bash -c '
      exec 3<>"/dev/tcp/$0/$1" || exit 1
      printf "PING\r\n" >&3
      IFS= read -r reply <&3
      [[ "$reply" == "+PONG"* ]]' "$REDIS_HOST" "$REDIS_PORT" 2>/dev/null
  fi
}

# Waits until "$1" (a function name) succeeds, at most SERVICE_READY_WAIT_SECONDS_MAX seconds.
wait_until() {
  local waited_seconds=0
  until "$1"; do
    if [ "$waited_seconds" -ge "$SERVICE_READY_WAIT_SECONDS_MAX" ]; then
      return 1
    fi
    sleep 1
    waited_seconds=$((waited_seconds + 1))
  done
}

apt_updated=no
apt_install() {
  if [ "$apt_updated" = no ]; then
    as_root apt-get update >>"$command_log" 2>&1 || fail "apt-get update failed"
    apt_updated=yes
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >>"$command_log" 2>&1 \
    || fail "apt-get install $* failed"
}

# The newest PostgreSQL server version installed from Debian's packages, or nothing.
postgres_installed_version() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /usr/lib/postgresql ]; then
    return 0
  fi
  local version
  # shellcheck disable=SC2012 # the entries are version numbers
  for version in $(ls /usr/lib/postgresql | sort -V -r); do
    if [ -x "/usr/lib/postgresql/$version/bin/postgres" ]; then
      echo "$version"
      return 0
    fi
  done
}

# Trust for local TCP connections (first match wins in pg_hba.conf, so the lines go on top),
# listening on 127.0.0.1 and the port the tests use. Only adds what is missing.
configure_postgres_cluster() {
  local version="$1"
  local cluster_directory="/etc/postgresql/$version/main"
  local hba="$cluster_directory/pg_hba.conf"
  local missing_lines=""
  local address
  for address in 127.0.0.1/32 ::1/128; do
    if ! as_root grep -Eq "^host[[:space:]]+all[[:space:]]+all[[:space:]]+${address//./\\.}[[:space:]]+trust" "$hba"; then
      missing_lines+="host all all $address trust"$'\n'
    fi
  done
  if [ -n "$missing_lines" ]; then
    local updated
    updated="$(mktemp)"
    { printf '# Added by Corridor ops/services.sh: the tests connect as postgres without a password.\n%s' \
        "$missing_lines"; as_root cat "$hba"; } >"$updated"
    # Written through tee into the existing file, which keeps its owner and mode.
    as_root tee "$hba" <"$updated" >/dev/null
    rm -f "$updated"
  fi
  as_root mkdir -p "$cluster_directory/conf.d"
  printf "# Written by Corridor ops/services.sh.\nlisten_addresses = '%s'\nport = %s\n" "$POSTGRES_HOST" "$POSTGRES_PORT" \
    | as_root tee "$cluster_directory/conf.d/90-corridor.conf" >/dev/null
}

start_postgres_cluster() {
  local version="$1"
  if as_root pg_ctlcluster --skip-systemctl-redirect "$version" main status >>"$command_log" 2>&1; then
    fail "PostgreSQL cluster $version/main is running but does not answer on $POSTGRES_HOST:$POSTGRES_PORT;" \
      "not restarting a running server: check its listen_addresses and port"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >>"$command_log" 2>&1 \
    || fail "could not start PostgreSQL cluster $version/main (see /var/log/postgresql/postgresql-$version-main.log)"
  wait_until postgres_answers \
    || fail "PostgreSQL $version/main did not answer on $POSTGRES_HOST:$POSTGRES_PORT within" \
      "${SERVICE_READY_WAIT_SECONDS_MAX}s (see /var/log/postgresql/postgresql-$version-main.log)"
}

ensure_postgres() {
  if postgres_answers; then
    echo "postgresql: already answering on $POSTGRES_HOST:$POSTGRES_PORT; nothing done"
    return 0
  fi
  local action
  local version
  version="$(postgres_installed_version)"
  if [ -z "$version" ]; then
    apt_install postgresql
    version="$(postgres_installed_version)"
    [ -n "$version" ] || fail "postgresql was installed but no server version is found under /usr/lib/postgresql"
    action="installed PostgreSQL $version"
  else
    action="PostgreSQL $version was installed but stopped"
  fi
  if [ ! -f "/etc/postgresql/$version/main/postgresql.conf" ]; then
    as_root pg_createcluster "$version" main >>"$command_log" 2>&1 \
      || fail "could not create PostgreSQL cluster $version/main"
    action="$action; created cluster main"
  fi
  configure_postgres_cluster "$version"
  # A cluster the package installation started itself runs without the configuration above, and
  # nobody uses it yet: restarting it is safe. Any other running cluster is left alone.
  if [[ "$action" == installed* ]] && as_root pg_ctlcluster --skip-systemctl-redirect "$version" main status >/dev/null 2>&1; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main restart >>"$command_log" 2>&1 \
      || fail "could not restart the new PostgreSQL cluster $version/main"
    wait_until postgres_answers || fail "the new PostgreSQL cluster $version/main did not answer after a restart"
  else
    start_postgres_cluster "$version"
  fi
  echo "postgresql: $action; pg_hba.conf trusts $POSTGRES_HOST and ::1; started, answering on $POSTGRES_HOST:$POSTGRES_PORT"
}

start_redis() {
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind "$REDIS_HOST" -::1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log >>"$command_log" 2>&1 \
    || fail "could not start redis-server (see /var/log/redis/ci.log)"
  wait_until redis_answers \
    || fail "Redis did not answer on $REDIS_HOST:$REDIS_PORT within ${SERVICE_READY_WAIT_SECONDS_MAX}s" \
      "(see /var/log/redis/ci.log)"
}

ensure_redis() {
  if redis_answers; then
    echo "redis: already answering on $REDIS_HOST:$REDIS_PORT; nothing done"
    return 0
  fi
  if command -v redis-server >/dev/null 2>&1; then
    start_redis
    echo "redis: was installed but stopped; started, answering on $REDIS_HOST:$REDIS_PORT"
    return 0
  fi
  apt_install redis-server
  # The package may have started its own server already (where services may start on install).
  if redis_answers; then
    echo "redis: installed; the package started it, answering on $REDIS_HOST:$REDIS_PORT"
    return 0
  fi
  start_redis
  echo "redis: installed and started, answering on $REDIS_HOST:$REDIS_PORT"
}

ensure_postgres
ensure_redis
