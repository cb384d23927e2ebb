#!/bin/sh
# Removes the images nothing needs, run by the deploy user's timer agi-prune.timer (core/ops.ts).
# Kept: every image a container uses (running or stopped, the platform's or not), and every image
# tagged agi-previous/<site> (the app gate tags the version an update replaced, so a rollback to it
# needs no pull), and every image pulled or tagged in the last 24 hours (a deploy may have pulled it
# and not started its container yet). Every other image is removed with `docker rmi` (never forced:
# an image that gained a container meanwhile stays), by each tag, or by repository@digest for an image
# pulled by digest, or by ID when it has neither. Prints what it removed and what it kept.
#   prune-images.sh [--keep IMAGE]... [REFERENCE]
# --keep keeps IMAGE as well: an image the host's jobs run only now and then (the off-site uploader).
# REFERENCE limits the removal to images whose reference matches it (docker's `reference` filter,
# e.g. `ghcr.io/acme/*`); the timer gives none. PRUNE_KEEP_RECENT_SECONDS (default 86400) is how
# recently pulled or tagged an image must be to stay.
set -eu
usage() {
  echo "usage: prune-images.sh [--keep IMAGE]... [REFERENCE]" >&2
  exit 2
}
keep_refs=
while [ "${1:-}" = --keep ]; do
  [ "$#" -ge 2 ] || usage
  case $2 in '' | -* | *[!A-Za-z0-9_./:@-]*) usage ;; esac
  keep_refs="$keep_refs $2"
  shift 2
done
[ "$#" -le 1 ] || usage
only=
if [ "$#" -eq 1 ]; then
  case $1 in '' | -* | *[!A-Za-z0-9_./:*-]*) usage ;; esac
  only="--filter=reference=$1"
fi
keep=$(mktemp)
trap 'rm -f "$keep" "$keep.all"' EXIT
ids=$(docker ps -aq)
if [ -n "$ids" ]; then
  # shellcheck disable=SC2086 # one id per word
  docker inspect --format '{{.Image}}' $ids >>"$keep"
fi
docker image ls --no-trunc --format '{{.Repository}} {{.ID}}' |
  awk '$1 ~ /^agi-previous\// { print $2 }' >>"$keep"
for ref in $keep_refs; do
  docker image inspect --format '{{.Id}}' "$ref" >>"$keep" 2>/dev/null || true
done
removed=0 kept=0
# By reference (an image with several tags is only gone once each tag is).
# shellcheck disable=SC2086 # $only is one word or none
docker image ls --no-trunc $only --format '{{.ID}} {{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}' |
  sort -u >"$keep.all"
keep_recent=${PRUNE_KEEP_RECENT_SECONDS:-86400}
case $keep_recent in '' | *[!0-9]*) usage ;; esac
recent=$(($(date +%s) - keep_recent))
while read -r id ref digest; do
  if grep -qxF "$id" "$keep"; then
    kept=$((kept + 1))
    continue
  fi
  tagged=$(docker image inspect --format '{{.Metadata.LastTagTime}}' "$id" 2>/dev/null || true)
  case $tagged in "" | 0001-01-01*) ;; *)
    if [ "$(date -d "${tagged%% [A-Z]*}" +%s 2>/dev/null || echo 0)" -gt "$recent" ]; then
      kept=$((kept + 1))
      continue
    fi
    ;;
  esac
  case $ref in
  *:"<none>")
    case $digest in *@"<none>") ref=$id ;; *) ref=$digest ;; esac
    ;;
  esac
  if docker rmi "$ref" >/dev/null 2>&1; then
    removed=$((removed + 1))
    echo "prune: removed $ref"
  else
    kept=$((kept + 1))
  fi
done <"$keep.all"
echo "prune: $removed image reference(s) removed, $kept kept"
