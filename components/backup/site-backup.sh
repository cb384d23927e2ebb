#!/bin/sh
# A site's backups on its host, as the deploy user: run by the site's systemd timer (the unit's
# ExecStart) and by host-restore.sh. Nothing of it stays resident: the timer starts it, it ends.
#
#   site-backup.sh backup  JOB...                  one verified backup (pg-backup.sh)
#   site-backup.sh restore JOB... -- ARGS...       pg-restore.sh DIR ARGS... (check, restore, drill)
#   site-backup.sh drill   JOB...                  the scheduled restore drill of the newest verified
#                                                   dump; its result goes to DIR/drill.json
#   site-backup.sh offsite JOB... -- ARGS...       offsite.sh ARGS (upload, list, fetch NAME|latest
#                                                   with the age identity on standard input)
#
# JOB is key=value words (core/timers.ts backupJobArgs writes them):
#   site=S database=D dir=HOST_DIR retention=DAILY:WEEKLY:MONTHLY and either
#   dedicated=CONTAINER                             the site's own database container: the tools run
#                                                   in it (docker exec, as postgres over its socket,
#                                                   no password), so they match the server
#   shared=CONTAINER:PORT network=N role=R pgpass=F the host's shared cluster: the tools run in a
#                                                   short-lived container of the cluster's own image
#                                                   (<site>-backup, removed at the end), as the site's
#                                                   app role, password from F (pgpass, 0600)
# and, for off-site copies (offsite.sh; a backup uploads after it, whatever its own result):
#   offsite=BUCKET/PREFIX recipient=AGE_PUBLIC_KEY offsite_keep=D:W:M offsite_env=F uploader=IMAGE
# Every file (dump, manifest, status) is written here on the host, in HOST_DIR.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091 # pg-lib.sh, installed beside this script
. "$here/pg-lib.sh"
usage() {
  echo "usage: site-backup.sh (backup | restore | drill | offsite) site=S database=D dir=DIR retention=D:W:M (dedicated=C | shared=C:PORT network=N role=R pgpass=FILE) [offsite=PATH recipient=KEY offsite_keep=D:W:M offsite_env=FILE uploader=IMAGE] [-- PG-RESTORE-ARGS | -- OFFSITE-ARGS]" >&2
  exit 2
}
[ "$#" -ge 1 ] || usage
action=$1
shift
case $action in backup | restore | drill | offsite) ;; *) usage ;; esac
site='' database='' dir='' retention='' dedicated='' shared='' network='' role='' pgpass=''
offsite='' recipient='' offsite_keep='' offsite_env='' uploader=''
while [ "$#" -gt 0 ]; do
  case $1 in
  --)
    shift
    break
    ;;
  site=* | database=* | dir=* | retention=* | dedicated=* | shared=* | network=* | role=* | pgpass=* | \
    offsite=* | recipient=* | offsite_keep=* | offsite_env=* | uploader=*)
    value=${1#*=}
    # The one pattern of a word that reaches this host's shell (core/host.ts SAFE_ARG).
    case $value in '' | *[!A-Za-z0-9_./:@-]*)
      echo "site-backup: ${1%%=*}: not a plain word" >&2
      exit 2
      ;;
    esac
    eval "${1%%=*}=\$value"
    ;;
  *) usage ;;
  esac
  shift
done
if [ -z "$site" ] || [ -z "$database" ] || [ -z "$dir" ]; then usage; fi
if [ -n "$dedicated" ] && [ -n "$shared" ]; then usage; fi
if [ -z "$dedicated" ] && { [ -z "$shared" ] || [ -z "$network" ] || [ -z "$role" ] || [ -z "$pgpass" ]; }; then usage; fi
case $action in restore | offsite) ;; *) [ "$#" -eq 0 ] || usage ;; esac
if [ -n "$offsite" ] && { [ -z "$recipient" ] || [ -z "$offsite_keep" ] || [ -z "$offsite_env" ] || [ -z "$uploader" ]; }; then usage; fi
if [ "$action" = offsite ] && [ -z "$offsite" ]; then
  echo "site-backup $site: no off-site copies are declared for this stack" >&2
  exit 1
fi
if [ "$action" = backup ]; then
  case $retention in *:*:*) ;; *) usage ;; esac
fi

mkdir -p "$dir"
# One job per site at a time (a backup, a check, a restore): the short-lived container's name is the
# site's. pg-backup.sh takes its own lock on $dir/.lock as well.
exec 7>"$dir/.job.lock"
# A scheduled drill waits for a backup of the site that runs at the same time (up to an hour).
wait_default=0
[ "$action" != drill ] || wait_default=3600
if ! flock -w "${SITE_JOB_WAIT:-$wait_default}" 7; then
  echo "site-backup $site: another backup or restore of this site is running" >&2
  exit 1
fi

export SITE="$site" BACKUP_DIR="$dir" PGDATABASE="$database"
if [ -n "$offsite" ]; then
  export OFFSITE_PATH="$offsite" OFFSITE_RECIPIENT="$recipient" OFFSITE_KEEP="$offsite_keep"
  export OFFSITE_ENV="$offsite_env" OFFSITE_IMAGE="$uploader"
fi
if [ "$action" = offsite ]; then
  # No database is needed: the off-site copies are files of this directory.
  exec sh "$here/offsite.sh" "$@"
fi
helper=
cleanup() {
  if [ -n "$helper" ]; then docker rm -f "$helper" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM

setup_error=
if [ -n "$dedicated" ]; then
  export PG_EXEC="docker exec -i -u postgres -e PGDATABASE $dedicated" BACKUP_GLOBALS=yes
else
  # The cluster's exact image, so pg_dump matches the server; on the platform network, nothing else.
  helper="$site-backup"
  export PGHOST="${shared%:*}" PGPORT="${shared##*:}" PGUSER="$role" PGPASSFILE=/tmp/agi.pgpass
  export PG_EXEC="docker exec -i -e PGHOST -e PGPORT -e PGUSER -e PGDATABASE -e PGPASSFILE $helper"
  export BACKUP_GLOBALS=no # roles live in the shared cluster; the app role may not read them
  docker rm -f "$helper" >/dev/null 2>&1 || true # what a killed run left (this run holds the lock)
  if ! image=$(docker inspect --format '{{.Image}}' "$PGHOST" 2>&1); then
    setup_error="cannot find the shared cluster's container $PGHOST: $image"
  elif ! out=$(docker run -d --rm --name "$helper" --network "$network" --memory "${BACKUP_MEMORY:-128m}" \
    --user postgres --cap-drop ALL --security-opt no-new-privileges \
    --label "agi.site=$site" --label agi.role=backup \
    --mount "type=bind,source=$here,target=/opt/agi,readonly" \
    --entrypoint sleep "$image" 86400 2>&1); then
    setup_error="cannot start the backup container $helper: $out"
  elif ! out=$(docker exec -i "$helper" sh -c 'umask 077 && cat > /tmp/agi.pgpass' <"$pgpass" 2>&1); then
    setup_error="cannot give $helper the role's password file: $out"
  fi
fi

if [ "$action" = backup ]; then
  RETENTION_DAILY=${retention%%:*}
  RETENTION_WEEKLY=${retention#*:}
  RETENTION_WEEKLY=${RETENTION_WEEKLY%:*}
  RETENTION_MONTHLY=${retention##*:}
  export RETENTION_DAILY RETENTION_WEEKLY RETENTION_MONTHLY
  # pg-backup.sh records a setup failure in status.json like any other.
  code=0
  BACKUP_SETUP_ERROR=$setup_error sh "$here/pg-backup.sh" || code=$?
  # Off-site: this dump, and any an earlier run could not send. A failed backup does not stop the
  # upload of earlier ones; a failed upload (offsite.json says why) does not undo the backup.
  if [ -n "$offsite" ]; then
    cleanup
    helper=
    sh "$here/offsite.sh" upload || { [ "$code" -ne 0 ] || code=1; }
  fi
  exit "$code"
fi

# pg-restore.sh with ARGS, here or (a shared-mode drill) in the short-lived container.
run_restore() {
  private=
  for a in "$@"; do [ "$a" != --private-server ] || private=yes; done
  if [ -z "$private" ]; then
    sh "$here/pg-restore.sh" "$dir" "$@"
    return $?
  fi
  # The shared-mode drill: a throwaway server inside the short-lived container (the site's role may
  # not create databases in the cluster). It takes the dump (already verified here) and its manifest
  # on standard input; only --backup FILE names one.
  if [ "${1:-}" != --backup ] || [ -z "${2:-}" ]; then usage; fi
  file=$2
  case $file in /*) ;; *) file="$dir/$file" ;; esac
  base=$(basename "$file" .dump)
  for f in "$file" "${file%.dump}.manifest.json"; do
    name=$(basename "$f")
    docker exec -i "$helper" sh -c 'mkdir -p /tmp/drill/daily && cat > "/tmp/drill/daily/$1"' sh "$name" <"$f" || return 1
  done
  shift 2
  docker exec "$helper" sh /opt/agi/pg-restore.sh /tmp/drill --backup "daily/$base.dump" "$@"
}

if [ "$action" = drill ]; then
  started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  last_success=null
  if [ -f "$dir/.drill-last-success" ]; then last_success=$(json_string "$(cat "$dir/.drill-last-success")"); fi
  error='' dump=''
  if [ -n "$setup_error" ]; then
    error=$setup_error
  elif ! dump=$(run_restore --latest --check 2>"$dir/.drill.err"); then
    error="no verified dump to drill: $(tail -n 1 "$dir/.drill.err")"
    dump=''
  elif [ -n "$dedicated" ] && ! out=$(run_restore --backup "$dump" --into-scratch 2>&1); then
    error="the drill failed: $(printf '%s' "$out" | tail -n 1)"
  elif [ -z "$dedicated" ] && ! out=$(run_restore --backup "$dump" --into-scratch --private-server 2>&1); then
    error="the drill failed: $(printf '%s' "$out" | tail -n 1)"
  fi
  rm -f "$dir/.drill.err"
  if [ -z "$error" ]; then
    printf '%s' "$started" >"$dir/.drill-last-success"
    last_success=$(json_string "$started")
  fi
  tmp="$dir/.drill.json.$$"
  {
    printf '{\n  "site": %s,\n  "lastAttempt": %s,\n' "$(json_string "$site")" "$(json_string "$started")"
    printf '  "lastSuccess": %s,\n' "$last_success"
    if [ -n "$dump" ]; then printf '  "dump": %s,\n' "$(json_string "$(basename "$dump")")"; else printf '  "dump": null,\n'; fi
    if [ -n "$error" ]; then printf '  "lastError": %s\n}\n' "$(json_string "$error")"; else printf '  "lastError": null\n}\n'; fi
  } >"$tmp"
  mv -f "$tmp" "$dir/drill.json"
  if [ -n "$error" ]; then
    echo "drill $site: FAILED: $error" >&2
    exit 1
  fi
  echo "drill $site: ok: $(basename "$dump") restores and matches its manifest"
  exit 0
fi

if [ -n "$setup_error" ]; then
  echo "restore: $setup_error" >&2
  exit 1
fi
run_restore "$@"
