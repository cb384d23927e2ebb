#!/bin/sh
# The gate of one app container version: the edge is switched to a version only after this passes.
#
#   app-gate.sh wait   SITE CONTAINER DEADLINE_SECONDS [GRACE_SECONDS]
#   app-gate.sh remove SITE CONTAINER GRACE_SECONDS
#
# wait polls `docker inspect` until CONTAINER is healthy (running, when it has no healthcheck). Then,
# in this order:
#   1. the image of the version that serves now (the one holding the site's name) gets the local tag
#      agi-previous/SITE:latest, so the image prune leaves it for a rollback that needs no pull;
#   2. CONTAINER gets the site's name as an alias on the site's edge network (SITE-edge), the name the
#      edge proxies to. Docker's DNS answers it with this version from then on, and the edge resolves
#      it per new connection, so the switch needs no reload of the edge. The version starts on that
#      network without the alias and serves nobody yet, so leaving and joining it again is harmless;
#   3. every other running version of the site is stopped with GRACE_SECONDS (default 30) for its
#      in-flight requests: from then on only CONTAINER answers, also if the rest of the deployment
#      fails (the old version's own gate removes the stopped container later).
# Each step is idempotent, so a run interrupted anywhere ends the same when it runs again. If the
# container exits, restarts, disappears, or is not healthy within DEADLINE_SECONDS, it prints the site,
# the container, its last health state and healthcheck outputs (never the container's environment or
# logs), removes the container, and exits non-zero: no container of a failed version is left behind.
# "unhealthy" alone does not end the wait: Docker turns a container healthy again on its next passing
# probe, and on a busy host probes of a good version time out for a while (seen in the engine suite);
# a version that stays unhealthy fails at the deadline.
# remove stops CONTAINER with GRACE_SECONDS for in-flight requests, then removes it. A container that
# Docker says does not exist is not an error; any other failure to inspect it (a daemon restarting) is.
# Installed on the host by the Platform; names are checked here again, as where they enter.
set -eu

usage() {
  echo "usage: app-gate.sh wait SITE CONTAINER DEADLINE [GRACE] | remove SITE CONTAINER GRACE" >&2
  exit 2
}
[ "$#" -eq 4 ] || { [ "$#" -eq 5 ] && [ "$1" = wait ]; } || usage
action=$1
site=$2
container=$3
seconds=$4
grace=${5:-30}
case $action in wait | remove) ;; *) usage ;; esac
case $grace in '' | *[!0-9]*) usage ;; esac
case $site in '' | *[!a-z0-9-]*)
  echo "app-gate: bad site name" >&2
  exit 2
  ;;
esac
# <site>-app-<8 lower-case hex digits>, and nothing else.
case $container in
"$site"-app-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
*)
  echo "app-gate: $site: bad container name" >&2
  exit 2
  ;;
esac
case $seconds in '' | *[!0-9]*)
  echo "app-gate: $site: bad number of seconds" >&2
  exit 2
  ;;
esac

if [ "$action" = remove ]; then
  if ! out=$(docker container inspect --format '{{.Id}}' "$container" 2>&1); then
    case $out in
    *"No such container"* | *"No such object"*)
      echo "app-gate: $site: $container is already gone"
      exit 0
      ;;
    esac
    echo "app-gate: $site: cannot inspect $container, so it is not removed: $out" >&2
    exit 1
  fi
  docker stop --time "$seconds" "$container" >/dev/null
  docker rm --volumes "$container" >/dev/null
  echo "app-gate: $site: $container stopped and removed"
  exit 0
fi

# The last three healthcheck outputs: one line each, printable characters only, at most 200 each.
last_probes() {
  docker container inspect \
    --format '{{if .State.Health}}{{range .State.Health.Log}}exit {{.ExitCode}}: {{.Output}}{{"\x00"}}{{end}}{{end}}' \
    "$container" 2>/dev/null | tr '\n\r\t' '   ' | tr '\000' '\n' | tr -cd '[:print:]\n' |
    cut -c1-200 | grep -v '^ *$' | tail -n 3 | sed 's/^/  /' || true
}

fail() {
  probes=$(last_probes)
  {
    echo "app-gate: site $site: the new app version $container $1; it was removed, and the edge was not switched to it (the previous version, if any, still serves)"
    if [ -n "$probes" ]; then
      echo "app-gate: last healthcheck outputs:"
      printf '%s\n' "$probes"
    fi
  } >&2
  docker rm --force --volumes "$container" >/dev/null 2>&1 || true
  exit 1
}

# The running app containers of the site other than CONTAINER, one per line.
others() {
  docker ps --filter "label=agi.site=$site" --filter label=agi.role=app --format '{{.Names}}' |
    grep -vxF "$container" || true
}

# The aliases a container holds on the site's edge network, space-separated.
aliases_of() {
  docker container inspect \
    --format "{{with index .NetworkSettings.Networks \"$site-edge\"}}{{range .Aliases}}{{.}} {{end}}{{end}}" \
    "$1"
}

# Steps 1 to 3 above, for the healthy CONTAINER.
publish() {
  network=$site-edge
  old=$(others)
  for other in $old; do
    held=$(aliases_of "$other" 2>/dev/null) || continue
    case " $held " in *" $site "*) ;; *) continue ;; esac
    image=$(docker container inspect --format '{{.Image}}' "$other" 2>/dev/null) || continue
    docker image tag "$image" "agi-previous/$site:latest" >/dev/null 2>&1 || true
  done
  held=$(aliases_of "$container" 2>/dev/null) || fail "could not be inspected"
  case " $held " in
  *" $site "*) ;;
  *)
    docker network disconnect "$network" "$container" >/dev/null 2>&1 || true
    if ! docker network connect --alias "$site" "$network" "$container" >/dev/null; then
      fail "could not join its edge network $network"
    fi
    ;;
  esac
  for other in $old; do
    docker stop --time "$grace" "$other" >/dev/null 2>&1 &
  done
  wait
  [ -z "$old" ] || echo "app-gate: $site: stopped the previous version ($(printf '%s' "$old" | tr '\n' ' ')) after its in-flight requests"
}

start=$(date +%s)
deadline=$((start + seconds))
while :; do
  if ! state=$(docker container inspect \
    --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}} {{.RestartCount}}' \
    "$container" 2>/dev/null); then
    echo "app-gate: site $site: the app container $container does not exist; if an earlier update removed it, run the update again with --refresh so it is created anew" >&2
    exit 1
  fi
  # shellcheck disable=SC2086 # four words, split on purpose
  set -- $state
  status=$1 health=$2 code=$3 restarts=$4
  case "$status $health" in
  "running healthy" | "running none")
    publish
    echo "app-gate: $site: $container is $( [ "$health" = none ] && echo running || echo healthy) after $(($(date +%s) - start))s and serves as $site"
    exit 0
    ;;
  exited* | dead*) fail "exited with code $code before it was healthy" ;;
  restarting*) fail "exited with code $code and is restarting" ;;
  esac
  [ "$restarts" = 0 ] || fail "restarted $restarts times before it was healthy"
  if [ "$(date +%s)" -ge "$deadline" ]; then
    fail "was not healthy within ${seconds}s (it is $status, $health)"
  fi
  sleep 1
done
