#!/bin/sh
# Runs on the Docker host (npm run restore sends it over SSH, or runs it locally on the local stack):
# restores one site's database through the host's installed site-backup.sh, with the site's job
# words (core/timers.ts backupJobArgs), as the site's timer runs its backups.
#
#   host-restore.sh SCRIPT [--offsite] (--latest | --backup FILE) (--into-scratch | --into) JOB...
#   host-restore.sh SCRIPT --offsite --list JOB...
#
# SCRIPT is the installed site-backup.sh. With --offsite the dump comes from the stack's off-site
# storage first (site-backup.sh offsite ... fetch): downloaded and decrypted with the age identity that
# the caller puts in the shell variable AGI_AGE_IDENTITY at the head of this script's text (it arrives
# on the SSH session's standard input and lives in this shell's memory only; it is never exported,
# written or printed). The dump is resolved and verified first, so a bad dump stops nothing. A real restore stops the site's app containers (labels agi.site and agi.role=app) so
# nothing writes during it, and starts them again whatever happens: that part runs detached on the
# host, so a dropped connection cannot leave the app stopped. The drill (--into-scratch) leaves the
# app running; in shared mode it uses a throwaway server in a short-lived container of the cluster's
# image, because the site's role may not create databases in the shared cluster.
set -eu

usage() {
  echo "usage: host-restore.sh SCRIPT [--offsite] (--latest | --backup FILE) (--into-scratch | --into) JOB... | SCRIPT --offsite --list JOB..." >&2
  exit 2
}
[ "$#" -ge 3 ] || usage
script=$1
shift
from_offsite=
if [ "$1" = --offsite ]; then
  from_offsite=yes
  shift
  if [ "${1:-}" = --list ]; then
    shift
    exec sh "$script" offsite "$@" -- list
  fi
fi
[ "$#" -ge 3 ] || usage
case $1 in
--latest)
  pick="--latest"
  file=
  shift
  ;;
--backup)
  [ "$#" -ge 3 ] || usage
  pick="--backup"
  file=$2
  shift 2
  ;;
*) usage ;;
esac
case $1 in --into-scratch | --into) target=$1 ;; *) usage ;; esac
shift
site=
database=
mode=
for word in "$@"; do
  case $word in
  site=*) site=${word#site=} ;;
  database=*) database=${word#database=} ;;
  dedicated=*) mode=dedicated ;;
  shared=*) mode=shared ;;
  esac
done
if [ -z "$site" ] || [ -z "$database" ] || [ -z "$mode" ]; then usage; fi
if [ ! -f "$script" ]; then
  echo "restore: $script is not on this host; has the stack been deployed?" >&2
  exit 1
fi
# Waits for a running backup of the site rather than failing.
export SITE_JOB_WAIT="${SITE_JOB_WAIT:-3600}"

if [ -n "$from_offsite" ]; then
  if [ -z "${AGI_AGE_IDENTITY:-}" ]; then
    echo "restore: no age identity came with the request" >&2
    exit 2
  fi
  echo "restore: fetching the dump from off-site storage"
  want=latest
  [ "$pick" = --latest ] || want=$file
  # The identity reaches age through a pipe: never a file, an argument or the environment.
  file=$(printf '%s\n' "$AGI_AGE_IDENTITY" | sh "$script" offsite "$@" -- fetch "$want")
  AGI_AGE_IDENTITY=
  pick=--backup
fi

# Resolve --latest now, so the dump verified here is the one restored below.
echo "restore: verifying the dump"
if [ "$pick" = --latest ]; then
  chosen=$(sh "$script" restore "$@" -- --latest --check)
else
  chosen=$(sh "$script" restore "$@" -- --backup "$file" --check)
fi
echo "restore: $chosen is verified"

if [ "$target" = --into-scratch ]; then
  if [ "$mode" = shared ]; then
    exec sh "$script" restore "$@" -- --backup "$chosen" --into-scratch --private-server
  fi
  exec sh "$script" restore "$@" -- --backup "$chosen" --into-scratch
fi

# From here the app is stopped, so this part must finish whatever happens to the caller: it runs
# detached (own session, no terminal, output to a log) and this script only follows its log. A lost
# connection or an impatient Ctrl-C cuts off the following, never the restore or the restart.
# One restore per site at a time: a second one could find the app already stopped and never start it.
lock="${TMPDIR:-/tmp}/agi-restore-$site.lock"
if ! mkdir "$lock" 2>/dev/null; then
  echo "restore: another restore of $site is running (or one was cut off: see ${TMPDIR:-/tmp}/agi-restore.*/log, then remove $lock)" >&2
  exit 1
fi
run=$(mktemp -d "${TMPDIR:-/tmp}/agi-restore.XXXXXX")
cat >"$run/phase.sh" <<'PHASE'
site=$1 database=$2 chosen=$3 status=$4 lock=$5 script=$6
shift 6
stopped=
finish() {
  code=$?
  trap - EXIT
  if [ -n "$stopped" ]; then
    # shellcheck disable=SC2086 # container ids, one word each
    if docker start $stopped >/dev/null; then
      echo "restore: started the app again"
    else
      echo "restore: could not start $stopped; start them by hand"
      [ "$code" -ne 0 ] || code=1
    fi
  fi
  echo "$code" >"$status"
  rmdir "$lock"
  exit "$code"
}
trap finish EXIT
trap '' HUP PIPE
trap 'exit 130' INT TERM
apps=$(docker ps --quiet --filter "label=agi.site=$site" --filter "label=agi.role=app") || exit 1
if [ -n "$apps" ]; then
  stopped=$(echo "$apps" | tr '\n' ' ')
  echo "restore: stopping the app ($(echo "$apps" | wc -l) container(s)) so nothing writes during the restore"
  # shellcheck disable=SC2086 # container ids, one word each
  docker stop --time 30 $stopped >/dev/null || exit 1
else
  echo "restore: no app container of $site is running"
fi
sh "$script" restore "$@" -- --backup "$chosen" --into "$database"
PHASE
: >"$run/log"
setsid nohup sh "$run/phase.sh" "$site" "$database" "$chosen" "$run/status" "$lock" "$script" \
  "$@" >>"$run/log" 2>&1 </dev/null &
pid=$!
echo "restore: running on the host as process $pid (log: $run/log); it starts the app again however it ends"
tail -n +1 -f --pid="$pid" "$run/log" || true
if ! status=$(cat "$run/status" 2>/dev/null); then
  echo "restore: the run ended without a status; see $run/log" >&2
  exit 1
fi
rm -rf "$run"
exit "$status"
