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
# --into DATABASE replaces that database's contents (stop the app first). As a superuser (a dedicated
# database) the dump is restored in parallel (pg_restore -j RESTORE_JOBS, default 2) into a new
# database with the old one's owner, settings and grants, checked against the manifest, and only then
# swapped in by two renames in one transaction; the old data is dropped after the swap. Any failure
# before the swap drops the new database and leaves the old one as it was. Without the right to
# create and rename databases (a shared cluster's app role) it is one transaction (--single-transaction
# --clean), which a failure rolls back. A parallel restore reads a file: with PG_EXEC the dump is
# first copied to PG_STAGE_DIR where the tools run (default /var/lib/postgresql/data/agi-restore,
# in the database's volume, beside PGDATA) and removed afterwards.
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
# shellcheck disable=SC1091 # pg-lib.sh, installed beside this script
. "$here/pg-lib.sh"
if [ -n "$private" ] && [ -n "${PG_EXEC:-}" ]; then usage; fi
work=$(mktemp -d)
scratch=
server=
staged=
swap=
cleanup() {
  if [ -n "$staged" ]; then pg rm -rf "$staged" </dev/null >/dev/null 2>&1 || true; fi
  if [ -n "$server" ]; then
    as_postgres pg_ctl -D "$server/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$server"
  elif [ -n "$scratch" ]; then
    pg psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$scratch\" WITH (FORCE)" </dev/null >/dev/null 2>&1 || true
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
# A restore into a database checks the checksum and the table of contents: bytes equal to the
# manifest's sha256 are the bytes the backup read back end to end, and pg_restore reads them all
# again. --check (which host-restore.sh runs before it stops the app) and the drill read it through.
verify_mode=
[ "$mode" != into ] || verify_mode=--toc
if ! "$here/verify-dump.sh" ${verify_mode:+"$verify_mode"} "$file" "$sha" >"$work/verify.out" 2>&1; then
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
  # The swap needs a superuser: it creates and renames databases and ends other sessions.
  # Asked of the database itself: a shared cluster's app role may connect to nothing else.
  superuser=$(pg psql -X -A -t -q -d "$into" -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user" </dev/null 2>"$work/role.err") || {
    echo "restore: cannot connect to $into: $(tail -n 2 "$work/role.err" | tr '\n' ' ')" >&2
    exit 1
  }
  if [ "$superuser" = t ] && [ "${RESTORE_JOBS:-2}" != 1 ]; then
    swap=yes
    restoring="agi_restore_$$"
    database=$restoring
    # SQL on standard input, the names as psql variables (quoted by psql, never by this shell).
    sql_into() { pg psql -X -A -t -q -v ON_ERROR_STOP=1 -d postgres -v into="$into" -v new="$restoring" "$@"; }
    # A killed run's database (no other restore of this server runs: site-backup.sh holds the lock).
    echo "SELECT format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database WHERE datname ~ '^agi_(restore|replaced)_[0-9]+\$' \\gexec" |
      sql_into >/dev/null 2>&1 || true
    # The new database as the old one is: owner, encoding, locale, connection limit, grants, settings.
    if ! out=$(sql_into 2>&1 <<'SQL'
SELECT format('CREATE DATABASE %I WITH OWNER %I TEMPLATE template0 ENCODING %L LC_COLLATE %L LC_CTYPE %L CONNECTION LIMIT %s',
              :'new', pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype, datconnlimit)
FROM pg_database WHERE datname = :'into' \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC, %I', :'new', pg_get_userbyid(datdba))
FROM pg_database WHERE datname = :'into' AND datacl IS NOT NULL \gexec
SELECT format('GRANT %s ON DATABASE %I TO %s%s', a.privilege_type, :'new',
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
              CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = :'into' \gexec
-- Each setting through set_config and FROM CURRENT, so a list (search_path) keeps its elements.
SELECT format('SELECT set_config(%L, %L, false)', split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)),
       CASE WHEN s.setrole = 0
            THEN format('ALTER DATABASE %I SET %I FROM CURRENT', :'new', split_part(c, '=', 1))
            ELSE format('ALTER ROLE %I IN DATABASE %I SET %I FROM CURRENT', pg_get_userbyid(s.setrole), :'new', split_part(c, '=', 1)) END
FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c
WHERE d.datname = :'into' \gexec
SQL
    ); then
      echo "restore: cannot create the database to restore into: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')" >&2
      exit 1
    fi
    if [ "$(echo "SELECT count(*) FROM pg_database WHERE datname = :'new';" | sql_into)" != 1 ]; then
      echo "restore: there is no database $into to replace" >&2
      exit 1
    fi
    scratch=$restoring # dropped on any exit before the swap
    source=$file
    if [ -n "${PG_EXEC:-}" ]; then
      # pg_restore -j reads a file where it runs: the dump goes there first, through standard input.
      stage=${PG_STAGE_DIR:-/var/lib/postgresql/data/agi-restore}
      staged=$stage
      # shellcheck disable=SC2016 # expanded by the inner shell
      pg sh -c 'rm -rf "$1" && mkdir -m 700 "$1" && cat > "$1/restore.dump"' sh "$stage" <"$file" 2>"$work/stage.err" || {
        echo "restore: cannot copy the dump where pg_restore runs: $(tail -n 2 "$work/stage.err" | tr '\n' ' ')" >&2
        exit 1
      }
      source="$stage/restore.dump"
    fi
    pg pg_restore --exit-on-error --jobs "${RESTORE_JOBS:-2}" -d "$restoring" "$source" </dev/null 2>"$work/restore.err" || {
      echo "restore: pg_restore failed, $into left as it was: $(tail -n 3 "$work/restore.err" | tr '\n' ' ')" >&2
      exit 1
    }
  else
    database=$into
    pg pg_restore --exit-on-error --single-transaction --clean --if-exists -d "$database" <"$file" 2>"$work/restore.err" || {
      echo "restore: pg_restore failed, $database left as it was: $(tail -n 3 "$work/restore.err" | tr '\n' ' ')" >&2
      exit 1
    }
  fi
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
if [ -n "$swap" ]; then
  # The checked copy takes the name in one step; the old data stays until then. No session may hold
  # the old database during the renames: open ones are ended (PostgreSQL waits for them to go). One
  # transaction: a failure or a kill changes nothing.
  replaced="agi_replaced_$$"
  if ! out=$(sql_into -v replaced="$replaced" 2>&1 <<'SQL'
BEGIN;
SELECT format('ALTER DATABASE %I ALLOW_CONNECTIONS false', :'into') \gexec
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :'into' AND pid <> pg_backend_pid();
SELECT format('ALTER DATABASE %I RENAME TO %I', :'into', :'replaced') \gexec
SELECT format('ALTER DATABASE %I RENAME TO %I', :'new', :'into') \gexec
COMMIT;
SQL
  ); then
    echo "restore: the swap failed, $into left as it was: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')" >&2
    exit 1
  fi
  scratch=
  # The replaced data goes in the background: dropping a database waits for a checkpoint of what the
  # restore wrote, and the site need not wait for that. One that fails is dropped by the next restore.
  # It outlives this script's work directory: a password file of its own, removed when it ends.
  drop_pass=
  if [ -n "${PGPASSFILE:-}" ] && [ -f "$PGPASSFILE" ]; then
    drop_pass=$(mktemp)
    cat "$PGPASSFILE" >"$drop_pass"
  fi
  (
    # Not the site's job lock (a backup may start at once), and its password copy goes however it ends.
    exec 7>&- 8>&-
    set +e
    trap 'rm -f "$drop_pass"' EXIT
    if [ -n "$drop_pass" ]; then export PGPASSFILE="$drop_pass"; fi
    echo "SELECT format('DROP DATABASE %I WITH (FORCE)', :'replaced') \\gexec" | sql_into -v replaced="$replaced"
  ) >/dev/null 2>&1 &
  database=$into
fi
if [ "$mode" = scratch ]; then
  echo "restore drill: ok: $(basename "$file") restores, $tables tables match the manifest's row counts"
else
  echo "restore: ok: $(basename "$file") restored into $database, $tables tables match the manifest's row counts"
fi
