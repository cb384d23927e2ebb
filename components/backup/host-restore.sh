#!/bin/sh
# Runs on the Docker host (npm run restore sends it over SSH, or runs it locally on the local stack):
# restores one site's database through the site's backup container.
#
#   host-restore.sh SITE DATABASE MODE (--latest | --backup FILE) (--into-scratch | --into)
#
# MODE is the site's database mode: dedicated or shared. The dump is resolved and verified first,
# so a bad dump stops nothing. A real restore stops the site's app containers (labels agi.site and
# agi.role=app) so nothing writes during it, and starts them again whatever happens: that part runs
# detached on the host, so a dropped connection cannot leave the app stopped. The drill
# (--into-scratch) leaves the app running; in shared mode it uses a throwaway server inside the
# backup container, because the site's role may not create databases in the shared cluster.
set -eu

usage() {
  echo "usage: host-restore.sh SITE DATABASE (dedicated|shared) (--latest | --backup FILE) (--into-scratch | --into)" >&2
  exit 2
}
[ "$#" -ge 5 ] || usage
site=$1
database=$2
mode=$3
shift 3
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
case $mode in dedicated | shared) ;; *) usage ;; esac

container="$site-backup"
restore=/opt/agi/pg-restore.sh
if ! running=$(docker inspect --format '{{.State.Running}}' "$container" 2>/dev/null); then
  echo "restore: $site has no backup container ($container) on this host; has the stack been deployed?" >&2
  exit 1
fi
if [ "$running" != true ]; then
  echo "restore: $container is not running; start it first (docker start $container)" >&2
  exit 1
fi

# Resolve --latest now, so the dump verified here is the one restored below.
echo "restore: verifying the dump in $container"
if [ "$pick" = --latest ]; then
  chosen=$(docker exec "$container" "$restore" /backups --latest --check)
else
  chosen=$(docker exec "$container" "$restore" /backups --backup "$file" --check)
fi
echo "restore: $chosen is verified"

if [ "$target" = --into-scratch ]; then
  if [ "$mode" = shared ]; then
    exec docker exec "$container" "$restore" /backups --backup "$chosen" --into-scratch --private-server
  fi
  exec docker exec "$container" "$restore" /backups --backup "$chosen" --into-scratch
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
site=$1 database=$2 chosen=$3 container=$4 restore=$5 status=$6 lock=$7
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
docker exec "$container" "$restore" /backups --backup "$chosen" --into "$database"
PHASE
: >"$run/log"
setsid nohup sh "$run/phase.sh" "$site" "$database" "$chosen" "$container" "$restore" "$run/status" \
  "$lock" >>"$run/log" 2>&1 </dev/null &
pid=$!
echo "restore: running on the host as process $pid (log: $run/log); it starts the app again however it ends"
tail -n +1 -f --pid="$pid" "$run/log" || true
if ! status=$(cat "$run/status" 2>/dev/null); then
  echo "restore: the run ended without a status; see $run/log" >&2
  exit 1
fi
rm -rf "$run"
exit "$status"
