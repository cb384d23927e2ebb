#!/bin/sh
# One verified backup of a site's database. site-backup.sh runs it on the host for the site's timer,
# with PG_EXEC set so that psql and pg_dump run inside the database's own container (the dump matches
# the server) while every file is written here; the tests run it against a real PostgreSQL 15.
#
# Environment:
#   SITE, BACKUP_DIR                     the site and its backup directory (daily/, weekly/, monthly/)
#   PGHOST, PGPORT, PGUSER, PGDATABASE   where the database is
#   PGPASSWORD_FILE                      file holding the password (never on a command line)
#   RETENTION_DAILY/_WEEKLY/_MONTHLY     dumps kept per tier (default 7, 4, 12)
#   BACKUP_GLOBALS=yes                   also dump roles (superuser only; no password hashes)
#   BACKUP_NOW                           the time to stamp, UTC (tests); default now
#   PG_EXEC                              command prefix that runs the PostgreSQL tools (pg-lib.sh)
#   BACKUP_SETUP_ERROR                   set by site-backup.sh when it could not reach the database:
#                                        recorded as this run's failure
#
# Steps: row counts of every table and a custom-format dump from one snapshot; the whole dump read
# back (pg_restore -f /dev/null: --list alone misses a truncated file); a manifest (counts, size,
# duration, sha256, database, server version); both moved atomically into daily/; then promotion and
# pruning (retention.sh), only after that. Any failure: exit 1, a clear log line, status.json updated,
# no partial file left, earlier dumps untouched.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091 # pg-lib.sh, installed beside this script
. "$here/pg-lib.sh"
: "${SITE:?SITE is required}" "${BACKUP_DIR:?BACKUP_DIR is required}" "${PGDATABASE:?PGDATABASE is required}"
daily=${RETENTION_DAILY:-7}
weekly=${RETENTION_WEEKLY:-4}
monthly=${RETENTION_MONTHLY:-12}
now=${BACKUP_NOW:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
stamp=$(date -u -d "$now" +%Y%m%dT%H%M%SZ)
name="$SITE-$stamp"
work="$BACKUP_DIR/.tmp/$name"
state="$BACKUP_DIR/.state"
started=$(date +%s)
step=starting
psql_pid=
reason=

mkdir -p "$BACKUP_DIR/daily" "$BACKUP_DIR/weekly" "$BACKUP_DIR/monthly" "$state" "$BACKUP_DIR/.tmp"
exec 8>"$BACKUP_DIR/.lock"
if ! flock -n 8; then
  echo "backup $SITE: another backup of this site is running; not starting a second one" >&2
  exit 1
fi

read_state() { if [ -f "$state/$1" ]; then cat "$state/$1"; else printf '%s' "$2"; fi; }

write_status() { # write_status ERROR_OR_EMPTY
  error=null
  [ -z "$1" ] || error=$(json_string "$1")
  tmp="$BACKUP_DIR/.status.json.$$"
  {
    printf '{\n  "site": %s,\n  "database": %s,\n' "$(json_string "$SITE")" "$(json_string "$PGDATABASE")"
    printf '  "lastAttempt": %s,\n' "$(json_string "$now")"
    printf '  "lastSuccess": %s,\n' "$(read_state last_success null)"
    printf '  "lastDump": %s,\n' "$(read_state last_dump null)"
    printf '  "lastSizeBytes": %s,\n' "$(read_state last_size null)"
    printf '  "lastDurationSeconds": %s,\n' "$(read_state last_duration null)"
    printf '  "lastError": %s\n}\n' "$error"
  } >"$tmp"
  mv -f "$tmp" "$BACKUP_DIR/status.json"
}

on_exit() {
  status=$?
  if [ -n "$psql_pid" ]; then kill "$psql_pid" 2>/dev/null || true; fi
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    [ -n "$reason" ] || reason="failed while $step (exit $status)"
    echo "backup $SITE: FAILED: $reason; earlier dumps are untouched" >&2
    write_status "$reason" || echo "backup $SITE: could not write status.json either" >&2
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' HUP INT TERM

# The reason stays in memory (see `reason=` above): on a full disk no file could hold it.
fail() {
  reason=$1
  exit 1
}
last_lines() { printf '%s\n' "$1" | tail -n 3 | tr '\n' ' '; }

# What a killed run may have left (a stop timeout ends in SIGKILL, where no trap runs): its work
# directory, and a dump moved without its manifest, which never counts. Clear both, under the lock.
rm -rf "$BACKUP_DIR/.tmp/"*
for orphan in "$BACKUP_DIR"/daily/*.dump; do
  [ -f "$orphan" ] || continue
  [ -f "${orphan%.dump}.manifest.json" ] || rm -f "$orphan" "${orphan%.dump}.globals.sql"
done
mkdir -p "$work"
if [ -n "${BACKUP_SETUP_ERROR:-}" ]; then fail "$BACKUP_SETUP_ERROR"; fi
if [ -n "${PGPASSWORD_FILE:-}" ]; then
  # A private password file for libpq, so the password is never in argv or the environment.
  umask 077
  printf '*:*:*:*:%s\n' "$(cat "$PGPASSWORD_FILE")" >"$work/pgpass"
  umask 022
  export PGPASSFILE="$work/pgpass"
fi

# One session holds a repeatable-read snapshot: the counts and the dump see the same data.
step="opening a snapshot"
mkfifo "$work/psql.in"
pg psql -X -A -t -q -v ON_ERROR_STOP=1 <"$work/psql.in" >"$work/psql.out" 2>"$work/psql.err" &
psql_pid=$!
exec 9>"$work/psql.in"
wait_for() { # wait_for MARKER
  # No time limit: counting a large database takes as long as it takes; a dead session fails at once.
  until grep -qx "$1" "$work/psql.out" 2>/dev/null; do
    if ! kill -0 "$psql_pid" 2>/dev/null; then fail "$step: $(tail -n 3 "$work/psql.err" | tr '\n' ' ')"; fi
    sleep 0.1
  done
}
cat >&9 <<'SQL'
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT 'snapshot=' || pg_export_snapshot();
SELECT 'version=' || current_setting('server_version');
\echo __ready__
SQL
wait_for __ready__
snapshot=$(sed -n 's/^snapshot=//p' "$work/psql.out")
version=$(sed -n 's/^version=//p' "$work/psql.out")

step="counting rows"
# One JSON object, table -> rows, built by PostgreSQL itself (any table name is encoded right), in the
# snapshot: query_to_xml runs each count inside this read-only transaction.
cat >&9 <<'SQL'
SELECT 'counts=' || coalesce(json_object_agg(t, n ORDER BY t), '{}')
FROM (
  SELECT n.nspname || '.' || c.relname AS t,
         (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint AS n
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND c.relpersistence <> 't'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
) x;
\echo __counted__
SQL
wait_for __counted__

step="dumping"
partial="$work/$name.dump.partial"
if ! out=$(pg pg_dump --snapshot="$snapshot" -Fc 2>&1 >"$partial" </dev/null); then
  fail "pg_dump failed: $(last_lines "$out")"
fi
printf 'COMMIT;\n\\q\n' >&9
exec 9>&-
wait "$psql_pid" || true
psql_pid=

if [ "${BACKUP_GLOBALS:-no}" = yes ]; then
  step="dumping roles"
  out=$(pg pg_dumpall --globals-only --no-role-passwords 2>&1 >"$work/$name.globals.sql" </dev/null) ||
    fail "pg_dumpall --globals-only failed: $(last_lines "$out")"
fi

step="verifying"
out=$("$here/verify-dump.sh" "$partial" 2>&1) || fail "verification failed: $(last_lines "$out")"

step="writing the manifest"
size=$(wc -c <"$partial" | tr -d ' ')
sum=$(sha256sum "$partial" | cut -d' ' -f1)
duration=$(($(date +%s) - started))
globals=false
[ ! -f "$work/$name.globals.sql" ] || globals=true
sed -n 's/^counts=//p' "$work/psql.out" >"$work/counts.json"
# The manifest is written by PostgreSQL's JSON encoder; values reach it as psql variables, which
# quote them, and the counts as a quoted \set line ahead of the query (psql may run elsewhere).
out=$({
  psql_set counts "$work/counts.json"
  cat <<'SQL'
SELECT jsonb_pretty(jsonb_build_object(
  'site', :'site', 'database', :'database', 'createdAt', :'created',
  'serverVersion', :'version', 'format', 'custom', 'sizeBytes', :'size'::bigint,
  'sha256', :'sha', 'durationSeconds', :'duration'::int, 'globals', :'globals'::boolean,
  'rowCounts', (:'counts')::jsonb));
SQL
} | pg psql -X -A -t -q -v ON_ERROR_STOP=1 \
  -v site="$SITE" -v database="$PGDATABASE" -v created="$now" -v version="$version" \
  -v size="$size" -v sha="$sum" -v duration="$duration" -v globals="$globals" \
  2>&1 >"$work/$name.manifest.json") || fail "writing the manifest failed: $(last_lines "$out")"

step="storing"
# Same filesystem: each move is atomic. The manifest goes last: a dump counts only with it.
mv -f "$partial" "$BACKUP_DIR/daily/$name.dump"
if [ -f "$work/$name.globals.sql" ]; then mv -f "$work/$name.globals.sql" "$BACKUP_DIR/daily/$name.globals.sql"; fi
mv -f "$work/$name.manifest.json" "$BACKUP_DIR/daily/$name.manifest.json"

step="applying retention"
out=$("$here/retention.sh" "$BACKUP_DIR" "$name" "$daily" "$weekly" "$monthly" 2>&1) ||
  fail "retention failed: $(last_lines "$out")"

json_string "$now" >"$state/last_success"
json_string "daily/$name.dump" >"$state/last_dump"
printf '%s' "$size" >"$state/last_size"
printf '%s' "$duration" >"$state/last_duration"
write_status ""
echo "backup $SITE: ok: daily/$name.dump, $size bytes, ${duration}s, verified"
