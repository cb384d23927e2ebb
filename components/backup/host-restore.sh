#!/bin/sh
# Runs on the Docker host (npm run restore sends it over SSH, or runs it locally on the local stack):
# restores one site's database through the site's backup container.
#
#   host-restore.sh SITE DATABASE MODE (--latest | --backup FILE) (--into-scratch | --into)
#
# MODE is the site's database mode: dedicated or shared. The dump is resolved and verified first,
# so a bad dump stops nothing. A real restore stops the site's app containers (labels agi.site and
# agi.role=app) so nothing writes during it, and starts them again whatever happens. The drill
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

apps=$(docker ps --quiet --filter "label=agi.site=$site" --filter "label=agi.role=app")
stopped=
restart() {
  if [ -n "$stopped" ]; then
    echo "restore: starting the app again"
    # shellcheck disable=SC2086 # container ids, one word each
    docker start $stopped >/dev/null || echo "restore: could not start $stopped; start them by hand" >&2
  fi
}
trap restart EXIT
trap 'exit 130' HUP INT TERM
if [ -n "$apps" ]; then
  echo "restore: stopping the app ($(echo "$apps" | wc -l) container(s)) so nothing writes during the restore"
  stopped=$(echo "$apps" | tr '\n' ' ')
  # shellcheck disable=SC2086 # container ids, one word each
  docker stop --time 30 $stopped >/dev/null
else
  echo "restore: no app container of $site is running"
fi
docker exec "$container" "$restore" /backups --backup "$chosen" --into "$database"
