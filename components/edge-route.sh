#!/bin/sh
# Applies or removes one site's Caddy fragment on an edge, without ever leaving a broken config live.
#   edge-route.sh apply  SITE SITES_DIR RELOAD_COMMAND...   (the fragment comes on standard input)
#   edge-route.sh remove SITE SITES_DIR RELOAD_COMMAND...
# apply: writes the fragment atomically, reloads Caddy and checks the reload's exit code (a port clash
# validates and still fails to reload); on failure puts the previous fragment back (or removes the
# new one), reloads again and exits 1 with Caddy's message. An unchanged fragment is not reloaded.
# remove: takes the fragment away and reloads; on failure puts it back. Applies on one edge are
# serialised with a lock. Fragments hold no secrets, and this script prints none of their text.
set -eu

usage() {
  echo "usage: edge-route.sh apply|remove SITE SITES_DIR RELOAD_COMMAND..." >&2
  exit 2
}
[ "$#" -ge 4 ] || usage
action=$1
site=$2
dir=$3
shift 3
case $action in apply | remove) ;; *) usage ;; esac
case $site in '' | *[!a-z0-9-]*)
  echo "edge-route: bad site name" >&2
  exit 2
  ;;
esac

target="$dir/$site.caddy"
backup="$dir/.$site.caddy.prev"
incoming="$dir/.$site.caddy.new.$$"

# Caddy's own words: its error lines, else the last lines it printed.
caddy_message() {
  errors=$(printf '%s\n' "$1" | grep -E '^Error|"level":"error"' | tail -n 3 || true)
  if [ -n "$errors" ]; then printf '%s\n' "$errors"; else printf '%s\n' "$1" | tail -n 3; fi
}

reload() {
  reload_output=$("$@" 2>&1) && return 0
  return 1
}

# Put back what was there before this run and reload; report and fail.
restore_and_fail() {
  failure=$1
  shift
  if [ -f "$backup" ]; then mv -f "$backup" "$target"; else rm -f "$target"; fi
  if reload "$@"; then
    restored="the previous configuration is back in force"
  else
    restored="reloading the previous configuration failed too: $(caddy_message "$reload_output")"
  fi
  echo "edge-route: $site: $failure; $restored" >&2
  exit 1
}

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
trap 'rm -f "$incoming"' EXIT

if [ "$action" = apply ]; then
  cat >"$incoming"
  if [ ! -s "$incoming" ]; then
    echo "edge-route: $site: empty fragment refused" >&2
    exit 2
  fi
  if [ -f "$target" ] && cmp -s "$incoming" "$target"; then
    echo "edge-route: $site: unchanged"
    exit 0
  fi
  rm -f "$backup"
  [ -f "$target" ] && cp -p "$target" "$backup"
  chmod 0644 "$incoming"
  mv -f "$incoming" "$target"
  if reload "$@"; then
    rm -f "$backup"
    echo "edge-route: $site: applied"
    exit 0
  fi
  restore_and_fail "reload refused the new fragment: $(caddy_message "$reload_output")" "$@"
fi

# remove
if [ ! -f "$target" ]; then
  echo "edge-route: $site: already absent"
  exit 0
fi
rm -f "$backup"
mv -f "$target" "$backup"
if reload "$@"; then
  rm -f "$backup"
  echo "edge-route: $site: removed"
  exit 0
fi
failure="reload failed after removing the fragment: $(caddy_message "$reload_output")"
# restore_and_fail puts the backup back in place.
restore_and_fail "$failure" "$@"
