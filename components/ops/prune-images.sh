#!/bin/sh
# Removes the images nothing needs, run by the deploy user's timer agi-prune.timer (core/ops.ts).
# Kept: every image a container uses (running or stopped, the platform's or not), and every image
# tagged agi-previous/<site> (the app gate tags the version an update replaced, so a rollback to it
# needs no pull). Every other image is removed with `docker rmi` (never forced: an image that gained
# a container meanwhile stays). Prints what it removed and what it kept.
#   prune-images.sh [REFERENCE]
# REFERENCE limits the removal to images whose reference matches it (docker's `reference` filter,
# e.g. `ghcr.io/acme/*`); the timer gives none.
set -eu
usage() {
  echo "usage: prune-images.sh [REFERENCE]" >&2
  exit 2
}
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
removed=0 kept=0
# By reference (an image with several tags is only gone once each tag is), by ID when untagged.
# shellcheck disable=SC2086 # $only is one word or none
docker image ls --no-trunc $only --format '{{.ID}} {{.Repository}}:{{.Tag}}' | sort -u >"$keep.all"
while read -r id ref; do
  if grep -qxF "$id" "$keep"; then
    kept=$((kept + 1))
    continue
  fi
  [ "$ref" != "<none>:<none>" ] || ref=$id
  if docker rmi "$ref" >/dev/null 2>&1; then
    removed=$((removed + 1))
    echo "prune: removed $ref"
  else
    kept=$((kept + 1))
  fi
done <"$keep.all"
echo "prune: $removed image reference(s) removed, $kept kept"
