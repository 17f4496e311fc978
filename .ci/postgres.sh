#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the sweep test (tests/test_sweep.py), print the
# export line for TRAINER_TEST_POSTGRES, and leave the server's folder in $1. Stop it with
#   pg_ctl -D "$1/data" stop
# Uses the Debian packages (postgresql); installs them if apt-get can. Exits 1 if no server can run.
set -euo pipefail
root="$1"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$bin" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null 2>&1 || true
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
fi
[ -n "$bin" ] || { echo "postgres: no PostgreSQL binaries" >&2; exit 1; }
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$root"
run=()
if [ "$(id -u)" = 0 ]; then  # initdb refuses to run as root
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$root"
    run=(runuser -u postgres --)
fi
"${run[@]}" "$bin/initdb" -D "$root/data" -U postgres --auth=trust -E UTF8 >/dev/null
"${run[@]}" "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $root" start >/dev/null
"${run[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres sweeps
echo "export TRAINER_TEST_POSTGRES=postgresql://postgres@127.0.0.1:$port/sweeps TRAINER_TEST_POSTGRES_STOP='${run[*]} $bin/pg_ctl -D $root/data -m fast stop'"
