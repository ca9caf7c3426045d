#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster in a directory of its own, for tests and
# benchmarks. PostgreSQL refuses to run as root, so as root the cluster runs
# as the `postgres` user (Debian's postgresql-15 package creates it).
#
#   scripts/pg_cluster.sh start DIR [--durable]   prints the cluster's URI
#   scripts/pg_cluster.sh stop DIR
#
# The URI connects as the superuser `postgres` to the database `postgres`
# over TCP on 127.0.0.1 (trust authentication), e.g.
# postgresql://postgres@127.0.0.1:PORT/postgres. The role `pdk_password`
# (password `pdk-secret`) must authenticate with its password (SCRAM), for
# tests of password handling. Without --durable the cluster runs with
# fsync=off: fast, and still safe against a killed client or server process,
# but not against power loss; benchmarks use --durable.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
action="${1:?usage: pg_cluster.sh start|stop DIR [--durable]}"
dir="${2:?usage: pg_cluster.sh start|stop DIR [--durable]}"
durable="${3:-}"

as_owner=()
if [ "$(id -u)" -eq 0 ]; then as_owner=(runuser -u postgres --); fi

case "$action" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$dir'"
      echo "max_connections = 400"
      echo "shared_buffers = 256MB"
      echo "password_encryption = 'scram-sha-256'"
      if [ "$durable" = "--durable" ]; then
        echo "fsync = on"
      else
        echo "fsync = off"
        echo "full_page_writes = off"
      fi
    } | "${as_owner[@]}" tee -a "$dir/data/postgresql.conf" >/dev/null
    # The password role first, so its rule wins over the trust rules.
    "${as_owner[@]}" sh -c "{ echo 'host all pdk_password 127.0.0.1/32 scram-sha-256';
      cat '$dir/data/pg_hba.conf'; } > '$dir/data/pg_hba.new' &&
      mv '$dir/data/pg_hba.new' '$dir/data/pg_hba.conf'"
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
      -c "CREATE ROLE pdk_password LOGIN SUPERUSER PASSWORD 'pdk-secret'" >/dev/null
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    [ -d "$dir/data" ] && "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) echo "pg_cluster.sh: unknown action $action" >&2; exit 2 ;;
esac
