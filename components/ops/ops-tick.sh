#!/bin/sh
# The host's one minute of operations, run by the deploy user's timer agi-ops.timer (core/ops.ts):
# nothing resident, no container holds the Docker socket.
#
#   ops-tick.sh STATE_DIR FAILING_STREAK MAX_RESTARTS_PER_HOUR
#
# 1. Memory: one sample of every running container of the platform ("EPOCH NAME BYTES" lines in
#    STATE_DIR/memory.log, the last 65 minutes kept), so `npm run status` can tell a container that
#    stayed over its reservation for the last hour from a spike.
# 2. Healing: Docker restarts a container that exits, never one that is merely unhealthy. An app
#    container (label agi.role=app) that is unhealthy with at least FAILING_STREAK failed probes in a
#    row is restarted, at most MAX_RESTARTS_PER_HOUR times per container in any hour; then it is left
#    alone and a "limit" line is written once per hour, which `npm run status` reports as a failure
#    (and the status workflow as an issue). Every action is a line in STATE_DIR/heal.log
#    ("EPOCH NAME restarted|limit STREAK"), kept for 7 days.
set -eu
usage() {
  echo "usage: ops-tick.sh STATE_DIR FAILING_STREAK MAX_RESTARTS_PER_HOUR" >&2
  exit 2
}
[ "$#" -eq 3 ] || usage
state=$1 streak=$2 max=$3
case $state in /*) ;; *) usage ;; esac
case $state in *[!A-Za-z0-9_./-]*) usage ;; esac
for n in "$streak" "$max"; do case $n in '' | *[!0-9]*) usage ;; esac; done
mkdir -p "$state"
exec 9>"$state/.ops.lock"
flock -n 9 || exit 0 # the previous minute's run is still going
now=$(date +%s)

# Keeps the lines of FILE whose first field is at least CUTOFF.
trim() {
  [ -f "$1" ] || return 0
  awk -v cut="$2" '$1 >= cut' "$1" >"$1.new"
  mv -f "$1.new" "$1"
}

ids=$(docker ps -q --filter label=agi.managed-by=agi-platform)
if [ -n "$ids" ]; then
  # shellcheck disable=SC2086 # one id per word
  docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' $ids |
    awk -v now="$now" '
      function bytes(v,   n, u) {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "KiB" || u == "kB") return n * 1024
        if (u == "MiB" || u == "MB") return n * 1048576
        if (u == "GiB" || u == "GB") return n * 1073741824
        return n
      }
      NF >= 2 { printf "%d %s %.0f\n", now, $1, bytes($2) }' >>"$state/memory.log"
fi
trim "$state/memory.log" $((now - 3900))

touch "$state/heal.log"
for id in $(docker ps -q --filter label=agi.managed-by=agi-platform --filter label=agi.role=app --filter health=unhealthy); do
  info=$(docker inspect --format '{{.Name}} {{.State.Health.FailingStreak}} {{index .Config.Labels "agi.site"}}' "$id") || continue
  # shellcheck disable=SC2086 # three words, split on purpose
  set -- $info
  [ "$#" -eq 3 ] || continue
  name=${1#/} failing=$2 site=$3
  case $failing in '' | *[!0-9]*) continue ;; esac
  case $site in '' | *[!a-z0-9-]*) continue ;; esac
  [ "$failing" -ge "$streak" ] || continue
  # Only the version that serves (it holds the site's name): a new version its gate still waits on
  # is the gate's to judge, and restarting it would reset the gate's wait.
  held=$(docker inspect --format "{{with index .NetworkSettings.Networks \"$site-edge\"}}{{range .Aliases}}{{.}} {{end}}{{end}}" "$id") || continue
  case " $held " in *" $site "*) ;; *) continue ;; esac
  recent=$(awk -v cut=$((now - 3600)) -v n="$name" '$1 >= cut && $2 == n && $3 == "restarted"' "$state/heal.log" | wc -l)
  if [ "$recent" -lt "$max" ]; then
    if docker restart --time 10 "$name" >/dev/null; then
      echo "$now $name restarted $failing" >>"$state/heal.log"
      echo "ops: restarted $name: unhealthy, $failing failed probes in a row ($((recent + 1)) of $max this hour)"
    else
      echo "ops: could not restart $name" >&2
    fi
  else
    limited=$(awk -v cut=$((now - 3600)) -v n="$name" '$1 > cut && $2 == n && $3 == "limit"' "$state/heal.log" | wc -l)
    if [ "$limited" -eq 0 ]; then
      echo "$now $name limit $failing" >>"$state/heal.log"
      echo "ops: $name is still unhealthy after $max restarts this hour; left alone (npm run status reports it)" >&2
    fi
  fi
done
trim "$state/heal.log" $((now - 7 * 86400))
