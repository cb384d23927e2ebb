#!/bin/bash
# Stand-in for the official postgres image's entrypoint, written for the engine suite. It honours the
# same contract: POSTGRES_PASSWORD[_FILE], POSTGRES_USER (default postgres), POSTGRES_DB (default the
# user), POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), PGDATA, and
# /docker-entrypoint-initdb.d (*.sh run when executable, else sourced; *.sql and *.sql.gz fed to psql)
# on the first start only, against a server that listens on its Unix socket only. As root it prepares
# the directories and re-runs itself as postgres with gosu; then it execs the command.
set -Eeo pipefail

log() { echo "entrypoint: $*" >&2; }

# from_file VAR: VAR or VAR_FILE (not both) becomes VAR.
from_file() {
  local name=$1 file_name="${1}_FILE"
  if [ -n "${!name:-}" ] && [ -n "${!file_name:-}" ]; then
    log "both $name and $file_name are set; set one"
    exit 1
  fi
  if [ -n "${!file_name:-}" ]; then
    export "$name"="$(<"${!file_name}")"
  fi
  unset "$file_name"
}

if [ "${1:0:1}" = "-" ]; then set -- postgres "$@"; fi

if [ "$1" != postgres ]; then exec "$@"; fi

from_file POSTGRES_PASSWORD
export POSTGRES_USER="${POSTGRES_USER:-postgres}"
export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 3777 /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  # The password came from a file root could read; the postgres user gets it through the environment.
  exec gosu postgres "$BASH_SOURCE" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    log "the database is uninitialized and no password is set: set POSTGRES_PASSWORD(_FILE)"
    exit 1
  fi
  log "initialising $PGDATA for $POSTGRES_USER"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    $POSTGRES_INITDB_ARGS >/dev/null
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

  # A first-start server on the socket only: nobody reaches it over TCP while it is being set up.
  PGHOST=/var/run/postgresql PGPASSWORD="$POSTGRES_PASSWORD" pg_ctl -D "$PGDATA" -w -s \
    -o "-c listen_addresses='' -p ${PGPORT:-5432}" start
  export PGPASSWORD="$POSTGRES_PASSWORD"
  run_psql() {
    PGHOST= PGHOSTADDR= psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
  }
  if [ "$POSTGRES_DB" != postgres ]; then
    run_psql --dbname postgres -q -v db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case $f in
    *.sh)
      if [ -x "$f" ]; then
        log "running $f"
        "$f"
      else
        log "sourcing $f"
        # shellcheck disable=SC1090
        . "$f"
      fi
      ;;
    *.sql) log "running $f"; run_psql --dbname "$POSTGRES_DB" -f "$f" ;;
    *.sql.gz) log "running $f"; gunzip -c "$f" | run_psql --dbname "$POSTGRES_DB" ;;
    *) log "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w -s stop
  unset PGPASSWORD
  log "first start done; starting PostgreSQL"
fi

exec "$@"
