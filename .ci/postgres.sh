# shellcheck shell=bash
# Starts a throwaway PostgreSQL server for the store tests and exports TEST_DATABASE_URL.
#
# Source it from bash (CI's .ci/run does):
#     source .ci/postgres.sh            # installs PostgreSQL if missing, starts it, exports
#     cargo test --features postgres,sqlite --test store_conformance --test store_concurrency
# The server is stopped when the sourcing shell exits (an EXIT trap, chained after any trap
# already set), or earlier with `td_postgres_stop`. Sourcing it again while the server runs
# does nothing. Options, from the environment:
#     TD_PG_PORT     first port to try (default 54329; the next free one is used)
#     TD_PG_DURABLE  1: keep PostgreSQL's durable defaults (fsync, synchronous_commit and
#                    full_page_writes on), as a production server has them: for the load
#                    benchmark. By default they are off, which only makes the tests faster.
#
# Runs as root on a fresh Debian machine: installs Debian's `postgresql` package when no
# initdb/pg_ctl is found, and runs the server as the `postgres` system user (initdb refuses
# root). As any other user it runs the server as that user. The cluster lives in a temporary
# directory, listens on 127.0.0.1 only, trusts local connections and is deleted on stop.

# shellcheck source=.ci/retry.sh
source "$(dirname "${BASH_SOURCE[0]}")/retry.sh"

td_postgres_log() { printf 'postgres.sh: %s\n' "$*" >&2; }

# Finds the directory holding initdb and pg_ctl; installs PostgreSQL if there is none.
td_postgres_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

td_postgres_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            td_postgres_log "PostgreSQL is not installed and this user cannot install it"
            return 1
        fi
    fi
    td_postgres_log "installing PostgreSQL from Debian's packages"
    TD_SUDO=$sudo td_apt_install --no-install-recommends postgresql
}

# Is something accepting connections on 127.0.0.1:$1?
td_postgres_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Runs a command as the server's user (from /, which that user can always enter).
td_postgres_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

td_postgres_stop() {
    if [ -n "${TD_PG_DIR:-}" ] && [ -d "$TD_PG_DIR" ]; then
        if [ -n "${TD_PG_BIN:-}" ] && [ -f "$TD_PG_DIR/data/postmaster.pid" ]; then
            td_postgres_as_owner "$TD_PG_BIN/pg_ctl" -D "$TD_PG_DIR/data" -m fast -w stop \
                >/dev/null 2>&1 || true
        fi
        rm -rf "$TD_PG_DIR"
    fi
    unset TD_PG_DIR TD_PG_BIN TEST_DATABASE_URL
}

td_postgres_start() {
    # Idempotent: a server this script started is still answering.
    if [ -n "${TD_PG_DIR:-}" ] && [ -n "${TD_PG_BIN:-}" ] && [ -n "${TEST_DATABASE_URL:-}" ] \
        && "$TD_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "${TD_PG_PORT_USED:-0}" 2>/dev/null; then
        td_postgres_log "already running: $TEST_DATABASE_URL"
        return 0
    fi

    local bin
    if ! bin=$(td_postgres_bindir); then
        td_postgres_install || return 1
        bin=$(td_postgres_bindir) || { td_postgres_log "initdb not found after install"; return 1; }
    fi

    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres || return 1
    fi

    local dir port
    dir=$(mktemp -d "${TMPDIR:-/tmp}/td-postgres.XXXXXX") || return 1
    mkdir -p "$dir/sock" || return 1
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$dir" || return 1
    fi
    TD_PG_DIR=$dir
    TD_PG_BIN=$bin

    port=${TD_PG_PORT:-54329}
    while td_postgres_port_busy "$port"; do
        port=$((port + 1))
        if [ "$port" -gt $(( ${TD_PG_PORT:-54329} + 100 )) ]; then
            td_postgres_log "no free port found"
            td_postgres_stop
            return 1
        fi
    done

    if ! td_postgres_as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust \
        --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1; then
        td_postgres_log "initdb failed:"
        cat "$dir/initdb.log" >&2
        td_postgres_stop
        return 1
    fi
    local fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if [ "${TD_PG_DURABLE:-0}" = 1 ]; then
        fast=""
    fi
    # A port nobody listens on can still be the local end of a client connection (the
    # ephemeral range covers it), which makes the bind fail: then the next port is tried.
    local tries=0
    # Each try writes a log of its own, read when it fails.
    until rm -f "$dir/server.log" &&
        td_postgres_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock $fast -c max_connections=200" \
            start >/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -ge 5 ] || ! grep -q "could not bind" "$dir/server.log"; then
            td_postgres_log "the server did not start:"
            cat "$dir/server.log" >&2
            td_postgres_stop
            return 1
        fi
        td_postgres_log "port $port is taken; trying $((port + 1))"
        port=$((port + 1))
    done
    local i
    for i in $(seq 1 60); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
        sleep 0.5
    done
    if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
        td_postgres_log "the server is not ready:"
        cat "$dir/server.log" >&2
        td_postgres_stop
        return 1
    fi

    TD_PG_PORT_USED=$port
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    td_postgres_log "PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') ready: $TEST_DATABASE_URL"

    # Stop on exit, after whatever EXIT trap the caller already had.
    local previous
    previous=$(trap -p EXIT)
    if [ -z "$previous" ]; then
        trap td_postgres_stop EXIT
    elif [[ "$previous" != *td_postgres_stop* ]]; then
        eval "set -- $previous"
        trap "$3; td_postgres_stop" EXIT
    fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    printf 'postgres.sh must be sourced: source .ci/postgres.sh\n' >&2
    exit 2
fi

td_postgres_start
