#!/bin/sh
# The gate of one app container version: the edge is switched to a version only after this passes.
#
#   app-gate.sh wait   SITE CONTAINER DEADLINE_SECONDS
#   app-gate.sh remove SITE CONTAINER GRACE_SECONDS
#
# wait polls `docker inspect` until CONTAINER is healthy (running, when it has no healthcheck), then
# gives it the site's name as an alias on the site's edge network (SITE-edge), the name the edge
# proxies to: Docker's DNS answers it for this version from then on (beside the previous version
# until that one is removed), and the edge resolves it per new connection, so the switch needs no
# reload of the edge. The version starts on that network without the alias, and is not serving yet,
# so leaving and joining it again is harmless. If it
# exits, restarts, disappears, or is not healthy within DEADLINE_SECONDS, it prints the site, the
# container, its last health state and healthcheck outputs (never the container's environment or
# logs), removes the container, and exits non-zero: no container of a failed version is left behind.
# "unhealthy" alone does not end the wait: Docker turns a container healthy again on its next passing
# probe, and on a busy host probes of a good version time out for a while (seen in the engine suite);
# a version that stays unhealthy fails at the deadline.
# remove stops CONTAINER with GRACE_SECONDS for in-flight requests, then removes it; a container that
# is already gone is not an error.
# Installed on the host by the Platform; names are checked here again, as where they enter.
set -eu

usage() {
  echo "usage: app-gate.sh wait|remove SITE CONTAINER SECONDS" >&2
  exit 2
}
[ "$#" -eq 4 ] || usage
action=$1
site=$2
container=$3
seconds=$4
case $action in wait | remove) ;; *) usage ;; esac
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

# Whether the container exists (a failed inspect for any other reason is an error of its own).
exists() {
  docker container inspect --format '{{.Id}}' "$container" >/dev/null 2>&1
}

if [ "$action" = remove ]; then
  if ! exists; then
    echo "app-gate: $site: $container is already gone"
    exit 0
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

# Gives the healthy CONTAINER the site's name on the site's edge network (idempotent: a run that was
# interrupted after it, or before it, ends the same).
publish() {
  network=$site-edge
  aliases=$(docker container inspect \
    --format "{{with index .NetworkSettings.Networks \"$network\"}}{{range .Aliases}}{{.}} {{end}}{{end}}" \
    "$container")
  case " $aliases " in *" $site "*) return 0 ;; esac
  docker network disconnect "$network" "$container" >/dev/null 2>&1 || true
  if ! docker network connect --alias "$site" "$network" "$container" >/dev/null; then
    fail "could not join its edge network $network"
  fi
  # The version this one replaces keeps its image under a local tag, so the image prune
  # (components/ops/prune-images.sh) leaves it for a rollback that needs no pull.
  for other in $(docker ps -a --filter "label=agi.site=$site" --filter label=agi.role=app --format '{{.Names}}'); do
    [ "$other" != "$container" ] || continue
    image=$(docker container inspect --format '{{.Image}}' "$other" 2>/dev/null) || continue
    docker image tag "$image" "agi-previous/$site:latest" >/dev/null 2>&1 || true
  done
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
