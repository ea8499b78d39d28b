#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 16 (with pgvector) on loopback for the test suite, from the
# binaries bundled in the PyPI package `pgserver`. Nothing is installed system-wide.
#
#   eval "$(scripts/pg-test-server.sh start)"   # exports TEST_DATABASE_URL and PG_TEST_DIR
#   scripts/pg-test-server.sh stop "$PG_TEST_DIR"
set -euo pipefail

PGSERVER_VERSION=0.1.4

tools_dir() {
  if [ "$(id -u)" = 0 ]; then
    # The server runs as an unprivileged user, who cannot enter /root.
    echo "/var/tmp/cortexlayer-tools"
  else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/cortexlayer-tools"
  fi
}

install_pgserver() {
  local dir; dir="$(tools_dir)/pgserver-$PGSERVER_VERSION"
  if [ ! -x "$dir/pgserver/pginstall/bin/postgres" ]; then
    local tmp; tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "pgserver==$PGSERVER_VERSION" >&2
    rm -rf "$dir.partial" && mkdir -p "$dir.partial"
    python3 -m zipfile -e "$tmp"/pgserver-*.whl "$dir.partial" >&2
    # Wheels unpacked by zipfile lose their executable bits.
    chmod a+x "$dir.partial"/pgserver/pginstall/bin/*
    chmod -R a+rX "$dir.partial"
    rm -rf "$dir" && mv "$dir.partial" "$dir"
    rm -rf "$tmp"
  fi
  chmod a+rx "$(tools_dir)"
  echo "$dir/pgserver/pginstall/bin"
}

as_pg_user() {
  if [ "$(id -u)" = 0 ]; then
    id -u cortexpg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin cortexpg
    runuser -u cortexpg -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local bin; bin="$(install_pgserver)"
  local dir; dir="$(mktemp -d /tmp/cortex-pg.XXXXXX)"
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && { id -u cortexpg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin cortexpg; chown cortexpg "$dir"; }
  local port; port="$(free_port)"
  as_pg_user "$bin/initdb" -D "$dir/data" -A trust -U postgres --encoding=UTF8 --no-sync >/dev/null
  as_pg_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null
  "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
  echo "export PG_TEST_DIR=$dir"
  echo "export PG_TEST_BIN=$bin"
  echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
}

stop() {
  local dir="$1" bin; bin="$(install_pgserver)"
  [ -d "$dir/data" ] && as_pg_user "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
