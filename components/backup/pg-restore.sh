#!/bin/sh
# Restores a site's database from a verified dump and checks the result against the dump's manifest.
#
#   pg-restore.sh BACKUP_DIR (--latest | --backup FILE) (--check | --into DATABASE | --into-scratch [--private-server])
#
# Environment: PGHOST, PGPORT, PGUSER and PGPASSWORD_FILE (never a password on a command line);
# PG_EXEC, a command prefix that runs the PostgreSQL tools elsewhere (pg-lib.sh; not with
# --private-server, which runs where its server does).
# --latest takes the newest dump that has a manifest, in any tier (a failed run leaves none behind).
# The dump is checked against the manifest's sha256 and read end to end before anything is touched.
# --check stops there and prints the dump's path under BACKUP_DIR.
# --into DATABASE replaces that database's contents in one transaction (stop the app first);
# --into-scratch restores into a throwaway database, compares, and drops it: the restore drill.
# With --private-server the throwaway database lives in a throwaway server of this container's own
# PostgreSQL, so the drill needs no right to create databases and never loads the site's server.
# The dump reaches pg_restore on its standard input, so the tools may run in another container.
# Afterwards every table's row count must equal the manifest's, or the script exits 1.
set -eu

usage() {
  echo "usage: pg-restore.sh BACKUP_DIR (--latest | --backup FILE) (--check | --into DATABASE | --into-scratch [--private-server])" >&2
  exit 2
}
[ "$#" -ge 3 ] || usage
dir=$1
shift
pick=
file=
mode=
into=
private=
while [ "$#" -gt 0 ]; do
  case $1 in
  --latest) pick=latest ;;
  --backup)
    [ "$#" -ge 2 ] || usage
    pick="backup"
    file=$2
    shift
    ;;
  --check) mode=check ;;
  --into-scratch) mode=scratch ;;
  --private-server) private=yes ;;
  --into)
    [ "$#" -ge 2 ] || usage
    mode=into
    into=$2
    shift
    ;;
  *) usage ;;
  esac
  shift
done
if [ -z "$pick" ] || [ -z "$mode" ]; then usage; fi
if [ -n "$private" ] && [ "$mode" != scratch ]; then usage; fi
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=pg-lib.sh
. "$here/pg-lib.sh"
if [ -n "$private" ] && [ -n "${PG_EXEC:-}" ]; then usage; fi
work=$(mktemp -d)
scratch=
server=
cleanup() {
  if [ -n "$server" ]; then
    as_postgres pg_ctl -D "$server/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$server"
  elif [ -n "$scratch" ]; then
    pg psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$scratch\"" </dev/null >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
# initdb refuses root: the private server runs as the image's postgres user.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM

if [ -n "${PGPASSWORD_FILE:-}" ]; then
  umask 077
  printf '*:*:*:*:%s\n' "$(cat "$PGPASSWORD_FILE")" >"$work/pgpass"
  umask 022
  export PGPASSFILE="$work/pgpass"
fi

# The one pattern of a dump's name (site-stamp): anything else in the directory is not ours.
dump_name_ok() {
  case $1 in '' | *[!A-Za-z0-9._-]* | .*) return 1 ;; *) return 0 ;; esac
}
if [ "$pick" = latest ]; then
  # Names sort by time; only dumps with a manifest count, and only names of the dump pattern.
  newest=$(for m in "$dir"/daily/*.manifest.json "$dir"/weekly/*.manifest.json "$dir"/monthly/*.manifest.json; do
    n=$(basename "${m%.manifest.json}")
    dump_name_ok "$n" && [ -f "$m" ] && [ -f "${m%.manifest.json}.dump" ] && printf '%s\n' "$n"
  done | sort | tail -n 1)
  if [ -z "$newest" ]; then
    echo "restore: no verified dump in $dir" >&2
    exit 1
  fi
  for tier in daily weekly monthly; do
    if [ -f "$dir/$tier/$newest.dump" ]; then
      file="$dir/$tier/$newest.dump"
      break
    fi
  done
else
  case $file in /*) ;; *) file="$dir/$file" ;; esac
  if ! dump_name_ok "$(basename "$file")"; then
    echo "restore: refusing a dump whose name is not letters, digits, '.', '_' and '-'" >&2
    exit 2
  fi
fi
manifest="${file%.dump}.manifest.json"
if [ ! -f "$file" ]; then
  echo "restore: no such dump: $file" >&2
  exit 1
fi
if [ ! -f "$manifest" ]; then
  echo "restore: $file has no manifest: it was never verified; refusing it" >&2
  exit 1
fi
sha=$(grep -o '"sha256": *"[0-9a-f]*"' "$manifest" | sed 's/.*"\([0-9a-f]*\)"$/\1/')
if ! "$here/verify-dump.sh" "$file" "$sha" >"$work/verify.out" 2>&1; then
  echo "restore: $file fails verification, refusing it: $(tail -n 2 "$work/verify.out" | tr '\n' ' ')" >&2
  exit 1
fi

if [ "$mode" = check ]; then
  echo "${file#"$dir"/}"
  exit 0
fi

if [ -n "$private" ]; then
  # The server binaries of the same major version as pg_restore.
  major=$(pg_restore --version | sed -n 's/^pg_restore (PostgreSQL) \([0-9]*\).*/\1/p')
  PATH="$PATH:/usr/lib/postgresql/$major/bin"
  server=$(mktemp -d)
  [ "$(id -u)" != 0 ] || chown postgres "$server"
  if ! as_postgres initdb -D "$server/data" -U postgres --auth=trust -E UTF8 --no-sync >"$work/server.log" 2>&1 ||
    ! as_postgres pg_ctl -D "$server/data" -w -t 60 -l "$server/log" \
      -o "-p 5432 -c listen_addresses='' -k $server -c shared_buffers=16MB -c max_connections=10 -c work_mem=4MB -c maintenance_work_mem=16MB -c fsync=off -c full_page_writes=off" \
      start >>"$work/server.log" 2>&1; then
    echo "restore: the throwaway server did not start: $(tail -n 3 "$work/server.log" "$server/log" 2>/dev/null | tr '\n' ' ')" >&2
    exit 1
  fi
  export PGHOST="$server" PGPORT=5432 PGUSER=postgres
  unset PGPASSFILE
  # The dump is restored by an ordinary role, so nothing in it runs with a superuser's rights.
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE ROLE drill LOGIN CREATEDB" >/dev/null
  PGUSER=drill
fi

if [ "$mode" = scratch ]; then
  scratch="restore_drill_$(date -u +%Y%m%d%H%M%S)_$$"
  if ! pg psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE \"$scratch\"" </dev/null >/dev/null 2>"$work/create.err"; then
    scratch=
    echo "restore: cannot create the throwaway database: $(tail -n 2 "$work/create.err" | tr '\n' ' ')" >&2
    exit 1
  fi
  database=$scratch
  pg pg_restore --exit-on-error --no-owner --no-privileges -d "$database" <"$file" 2>"$work/restore.err" || {
    echo "restore: pg_restore failed: $(tail -n 3 "$work/restore.err" | tr '\n' ' ')" >&2
    exit 1
  }
else
  database=$into
  pg pg_restore --exit-on-error --single-transaction --clean --if-exists -d "$database" <"$file" 2>"$work/restore.err" || {
    echo "restore: pg_restore failed, $database left as it was: $(tail -n 3 "$work/restore.err" | tr '\n' ' ')" >&2
    exit 1
  }
fi

# Every table the manifest counted must hold exactly that many rows. The comparison runs in SQL, so
# table names with spaces or quotes are quoted by format('%I'), not by this shell.
# The manifest reaches psql as a quoted \set line ahead of the query, never as SQL text.
tables=$({
  psql_set manifest "$manifest"
  echo "SELECT count(*) FROM json_object_keys((:'manifest')::json -> 'rowCounts');"
} | pg psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$database" 2>/dev/null || echo "?")
if ! mismatches=$({
  psql_set manifest "$manifest"
  cat <<'SQL'
SELECT format(
  'SELECT %L || '' ('' || c || '' of '' || %s || '')'' FROM (SELECT count(*) AS c FROM %I.%I) x WHERE c <> %s',
  key, value, split_part(key, '.', 1), substr(key, length(split_part(key, '.', 1)) + 2), value)
FROM json_each_text((:'manifest')::json -> 'rowCounts') \gexec
SQL
} | pg psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$database" 2>&1); then
  echo "restore: checking row counts failed: $(printf '%s' "$mismatches" | tail -n 2 | tr '\n' ' ')" >&2
  exit 1
fi
if [ -n "$mismatches" ]; then
  echo "restore: row counts differ from the manifest: $(printf '%s' "$mismatches" | tr '\n' ',' | sed 's/,$//; s/,/, /g')" >&2
  exit 1
fi
if [ "$mode" = scratch ]; then
  echo "restore drill: ok: $(basename "$file") restores, $tables tables match the manifest's row counts"
else
  echo "restore: ok: $(basename "$file") restored into $database, $tables tables match the manifest's row counts"
fi
