#!/usr/bin/env bash
# A throwaway PostgreSQL server for the depot's tests and benchmarks.
#
#   scripts/pg.sh start   install Debian's PostgreSQL if absent, initdb a temp data dir (first time),
#                         start on 127.0.0.1:$DEPOT_PG_PORT, create database depot_test, print the URL
#   scripts/pg.sh stop    stop the server and remove its data directory
#   scripts/pg.sh kill    stop the server at once (SIGQUIT, like a crash) but keep the data directory,
#                         so a later `start` brings the same data back (the kill-the-server tests)
#   scripts/pg.sh url     print the URL (whether or not the server runs)
#   scripts/pg.sh status  exit 0 when the server accepts connections
#
# DEPOT_PG_PORT (default 54329) picks the port, and with it the data directory /tmp/depot-pg-$PORT
# (or DEPOT_PG_DATA), so several servers can run side by side: the JS kill test uses its own.
#
# DEPOT_PG_SSL=1 makes a TLS-only server: at initdb, a throwaway CA (ca.pem) and a server certificate
# for 127.0.0.1 and `localhost` are generated into the data directory with the openssl CLI, ssl=on,
# and pg_hba.conf accepts TCP connections only over TLS (`hostssl`, no `host` lines). The URL printed
# then ends in ?sslmode=verify-full&sslrootcert=$DATA/ca.pem. Set it for `url` too.
#
# Every command is idempotent. Use it as: export DEPOT_TEST_PG_URL="$(scripts/pg.sh start)"
# Only the URL goes to stdout; progress goes to stderr.
#
# The server runs as the `postgres` user (initdb refuses root); connections over TCP need the password
# (scram-sha-256), so the tests exercise credentials in the URL. The password is a test-only constant.
set -euo pipefail

PORT="${DEPOT_PG_PORT:-54329}"
DATA="${DEPOT_PG_DATA:-/tmp/depot-pg-$PORT}"
DB=depot_test
PG_USER=postgres
PG_PASS=depot-test
URL="postgres://$PG_USER:$PG_PASS@127.0.0.1:$PORT/$DB"
if [ "${DEPOT_PG_SSL:-}" = 1 ]; then URL="$URL?sslmode=verify-full&sslrootcert=$DATA/ca.pem"; fi

log() { echo "pg.sh: $*" >&2; }

bin_dir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; fi
}

ensure_installed() {
    if [ -z "$(bin_dir)" ]; then
        log "no PostgreSQL server binaries found; installing Debian's postgresql"
        local sudo=""
        if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    fi
    BIN="$(bin_dir)"
    if [ -z "$BIN" ]; then log "PostgreSQL installation failed"; exit 1; fi
}

# Runs a server binary as the postgres user when we are root, else as ourselves.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

# A CA and a server certificate signed by it (EC P-256, valid 2 days), TLS on, TCP only over TLS.
setup_ssl() {
    local tmp
    tmp="$(mktemp -d)"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=depot test CA" -keyout "$tmp/ca.key" -out "$DATA/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=127.0.0.1" -keyout "$DATA/server.key" -out "$tmp/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$tmp/ext"
    openssl x509 -req -in "$tmp/server.csr" -CA "$DATA/ca.pem" -CAkey "$tmp/ca.key" -CAserial "$tmp/ca.srl" -CAcreateserial \
        -days 2 -extfile "$tmp/ext" -out "$DATA/server.crt" 2>/dev/null
    rm -rf "$tmp"
    chmod 600 "$DATA/server.key"
    chmod 644 "$DATA/ca.pem" "$DATA/server.crt"
    if [ "$(id -u)" = 0 ]; then chown "$PG_USER" "$DATA/server.key" "$DATA/server.crt" "$DATA/ca.pem"; fi
    printf '%s\n' "ssl = on" "ssl_cert_file = 'server.crt'" "ssl_key_file = 'server.key'" >>"$DATA/postgresql.conf"
    printf '%s\n' "local all all trust" "hostssl all all 127.0.0.1/32 scram-sha-256" \
        "hostssl all all ::1/128 scram-sha-256" >"$DATA/pg_hba.conf"
}

running() {
    # Accepting connections, not just a postmaster.pid: the pid of a server killed with its session
    # can linger as an unreaped zombie that pg_ctl status takes for a live server.
    [ -f "$DATA/postmaster.pid" ] && as_pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"
}

init_data() {
    log "initdb in $DATA"
    rm -rf "$DATA"
    mkdir -p "$DATA"
    local pwfile
    pwfile="$(mktemp)"
    echo "$PG_PASS" >"$pwfile"
    if [ "$(id -u)" = 0 ]; then chown "$PG_USER" "$DATA" "$pwfile"; fi
    as_pg "$BIN/initdb" -D "$DATA" -U "$PG_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-instructions >/dev/null
    rm -f "$pwfile"
    if [ "${DEPOT_PG_SSL:-}" = 1 ]; then setup_ssl; fi
}

start_server() {
    log "starting PostgreSQL ($BIN) on 127.0.0.1:$PORT"
    # pg_stat_statements (when installed) lets bench/postgres.mjs count the statements per commit.
    local extra=""
    if [ -f "$("$BIN/pg_config" --pkglibdir 2>/dev/null)/pg_stat_statements.so" ]; then
        extra="-c shared_preload_libraries=pg_stat_statements"
    fi
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
        -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c max_connections=200 $extra" start >/dev/null
}

start() {
    ensure_installed
    if [ ! -f "$DATA/PG_VERSION" ]; then
        init_data
    fi
    if ! running; then
        # A server killed with its session (SIGKILL) leaves a stale postmaster.pid, and its
        # children may take a moment to notice and exit: retry, then start from a fresh data dir
        # (test data only) rather than fail the run.
        if ! start_server; then
            sleep 2
            if ! start_server; then
                log "could not restart the server in $DATA; starting from a fresh data directory"
                init_data
                start_server
            fi
        fi
    fi
    local i
    for i in $(seq 1 60); do
        if as_pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then break; fi
        sleep 0.5
    done
    if ! as_pg "$BIN/psql" -h "$DATA" -p "$PORT" -U "$PG_USER" -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB'" postgres | grep -q 1; then
        as_pg "$BIN/psql" -q -h "$DATA" -p "$PORT" -U "$PG_USER" -c "CREATE DATABASE $DB" postgres >&2
    fi
    echo "$URL"
}

stop() {
    BIN="$(bin_dir)"
    if [ -n "$BIN" ] && [ -d "$DATA" ] && running; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$DATA"
    log "stopped; removed $DATA"
}

kill_server() {
    BIN="$(bin_dir)"
    if [ -n "$BIN" ] && [ -d "$DATA" ] && running; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null || true
    fi
    log "killed (data kept in $DATA)"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    kill) kill_server ;;
    url) echo "$URL" ;;
    status) BIN="$(bin_dir)"; [ -n "$BIN" ] && running ;;
    *) echo "usage: $0 start|stop|kill|url|status" >&2; exit 2 ;;
esac
