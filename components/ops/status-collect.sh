#!/bin/sh
# Collects what `npm run status` reports, on a host, in one pass: run as the deploy user (over SSH
# with the pinned key, or locally), reading Docker and /proc. Prints sections, each introduced by a
# line "### <name>", for the status command to parse. Changes nothing.
#   status-collect.sh BACKUP_ROOT [STATE_DIR]
# STATE_DIR holds the ops timer's records (heal.log, memory.log; core/ops.ts).
set -u
backups=${1:?usage: status-collect.sh BACKUP_ROOT [STATE_DIR]}
state=${2:-}
case $backups in /*) ;; *) echo "status-collect: BACKUP_ROOT must be absolute" >&2; exit 2 ;; esac
case $state in '' | /*) ;; *) echo "status-collect: STATE_DIR must be absolute" >&2; exit 2 ;; esac

echo "### now"
date -u +%s
echo "### containers"
ids=$(docker ps -aq --filter label=agi.managed-by=agi-platform)
if [ -n "$ids" ]; then
  # shellcheck disable=SC2086 # one id per word
  docker inspect $ids
else
  echo "[]"
fi
echo "### stats"
if [ -n "$ids" ]; then
  # shellcheck disable=SC2086
  docker stats --no-stream --format '{{json .}}' $ids
fi
echo "### events"
docker events --since 24h --until 0s --filter type=container \
  --filter label=agi.managed-by=agi-platform --filter event=die --format '{{json .}}'
echo "### backups"
for f in "$backups"/*/status.json; do
  [ -f "$f" ] || continue
  dir=${f%/status.json}
  # A record without a final newline must not swallow the next marker line.
  echo "=== ${dir##*/}"
  cat "$f"
  echo
  for side in drill offsite; do
    if [ -f "$dir/$side.json" ]; then
      echo "=== ${dir##*/} $side"
      cat "$dir/$side.json"
      echo
    fi
  done
done
echo "### heal"
if [ -n "$state" ] && [ -f "$state/heal.log" ]; then cat "$state/heal.log" && echo; fi
echo "### memory"
if [ -n "$state" ] && [ -f "$state/memory.log" ]; then cat "$state/memory.log" && echo; fi
echo "### loadavg"
cat /proc/loadavg
echo "### meminfo"
grep -E '^(MemTotal|MemAvailable):' /proc/meminfo
echo "### df"
df -Pk / "$backups" 2>/dev/null
echo "### dockerdf"
docker system df --format '{{json .}}'
echo "### end"
