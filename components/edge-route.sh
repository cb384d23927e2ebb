#!/bin/sh
# Applies or removes one site's Caddy fragment on an edge, without ever leaving a broken config live.
#
#   edge-route.sh apply  SITE SITES_DIR CADDYFILE ADMIN [EXEC...]         (the fragment on stdin)
#   edge-route.sh remove SITE SITES_DIR CADDYFILE ADMIN SHA256 [EXEC...]
#
# SITES_DIR is the fragment directory as this shell sees it; CADDYFILE the main Caddyfile and ADMIN
# the admin address as Caddy sees them; EXEC runs a command where Caddy runs (e.g.
# "docker exec agi-edge"; empty: here). It is a plain word list.
#
# apply writes the fragment atomically, then checks before Caddy is touched: the whole config must
# adapt, and every listener it adds must be free (a port clash validates, then fails to reload, and
# a failed reload briefly drops TLS handshakes on Caddy 2.6). Then it reloads and checks the reload's
# exit code. On any failure, or if the run is interrupted, the previous fragment is put back (or the
# new one removed), Caddy is reloaded if it was touched, and the script exits non-zero with Caddy's
# message. An unchanged fragment is not reloaded.
# remove takes the fragment away and reloads, but only if it is still the one with SHA256 (another
# resource may have written a newer one since: a site that changed kind or host); on failure it puts
# it back. Runs on one edge are serialised with a lock. Fragments hold no secrets; none is printed.
set -eu

usage() {
  echo "usage: edge-route.sh apply SITE SITES_DIR CADDYFILE ADMIN [EXEC...]" >&2
  echo "       edge-route.sh remove SITE SITES_DIR CADDYFILE ADMIN SHA256 [EXEC...]" >&2
  exit 2
}
[ "$#" -ge 5 ] || usage
action=$1
site=$2
dir=$3
caddyfile=$4
admin=$5
shift 5
expected_sha=
case $action in
apply) ;;
remove)
  [ "$#" -ge 1 ] || usage
  expected_sha=$1
  shift
  ;;
*) usage ;;
esac
case $site in '' | *[!a-z0-9-]*)
  echo "edge-route: bad site name" >&2
  exit 2
  ;;
esac
exec_prefix="$*"

target="$dir/$site.caddy"
backup="$dir/.$site.caddy.prev"
incoming="$dir/.$site.caddy.new.$$"
probe="$dir/.probe-$site.json"
probe_seen_by_caddy="$(dirname "$caddyfile")/sites.d/.probe-$site.json"

# State for the exit handler: files swapped but not committed are always put back.
swapped=no
touched=no
committed=no

# Caddy's own words: its error lines, else the last lines it printed.
caddy_message() {
  errors=$(printf '%s\n' "$1" | grep -E '^Error|"level":"error"' | tail -n 3 || true)
  if [ -n "$errors" ]; then printf '%s\n' "$errors"; else printf '%s\n' "$1" | tail -n 3; fi
}

# Runs caddy where Caddy runs; its output lands in $caddy_output.
exec_caddy() {
  # shellcheck disable=SC2086 # the EXEC prefix is a plain word list
  caddy_output=$($exec_prefix caddy "$@" 2>&1) && return 0
  return 1
}

reload() {
  touched=yes
  exec_caddy reload --config "$caddyfile" --adapter caddyfile --address "$admin"
}

adapt() {
  exec_caddy adapt --config "$caddyfile" --adapter caddyfile
}

# Listener addresses in adapted JSON, one per line, sorted.
listeners_of() {
  printf '%s\n' "$1" | grep -o '"listen":\[[^]]*\]' | sed 's/^"listen":\[//; s/\]$//' |
    tr ',' '\n' | tr -d '"' | sort -u
}

# Puts the files back as they were before this run (or before a run that died half-way).
put_back() {
  if [ -f "$backup" ]; then mv -f "$backup" "$target"; else rm -f "$target"; fi
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
on_exit() {
  status=$?
  rm -f "$incoming" "$probe"
  if [ "$swapped" = yes ] && [ "$committed" = no ]; then
    put_back
    if [ "$touched" = yes ]; then reload || true; fi
    [ "$status" -ne 0 ] || status=1
  fi
  exit "$status"
}

fail() {
  message=$1
  put_back
  swapped=no
  restored="nothing was reloaded"
  if [ "$touched" = yes ]; then
    if reload; then
      restored="the previous configuration is back in force"
    else
      restored="reloading the previous configuration failed too: $(caddy_message "$caddy_output")"
    fi
  fi
  echo "edge-route: $site: $message; $restored" >&2
  exit 1
}

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
trap on_exit EXIT
trap 'exit 130' HUP INT TERM

# A run that died after swapping left its backup: roll that change back first, and let this run
# reload (the live config may hold either version).
recovered=no
if [ -f "$backup" ]; then
  put_back
  recovered=yes
fi

if [ "$action" = remove ]; then
  if [ ! -f "$target" ]; then
    echo "edge-route: $site: already absent"
    [ "$recovered" = no ] || reload || true
    exit 0
  fi
  actual_sha=$(sha256sum "$target" | cut -d' ' -f1)
  if [ "$actual_sha" != "$expected_sha" ]; then
    echo "edge-route: $site: the fragment on the edge is newer than this resource's; left in place"
    exit 0
  fi
  mv -f "$target" "$backup"
  swapped=yes
  if reload; then
    rm -f "$backup"
    committed=yes
    echo "edge-route: $site: removed"
    exit 0
  fi
  fail "reload failed after removing the fragment: $(caddy_message "$caddy_output")"
fi

cat >"$incoming"
if [ ! -s "$incoming" ]; then
  echo "edge-route: $site: empty fragment refused" >&2
  exit 2
fi
if [ "$recovered" = no ] && [ -f "$target" ] && cmp -s "$incoming" "$target"; then
  echo "edge-route: $site: unchanged"
  exit 0
fi
before=""
if adapt; then before=$(listeners_of "$caddy_output"); fi
if [ -f "$target" ]; then cp -p "$target" "$backup"; fi
chmod 0644 "$incoming"
swapped=yes
mv -f "$incoming" "$target"

# 1. The whole configuration must adapt (syntax, unknown directives, bad values).
adapt || fail "the configuration does not adapt: $(caddy_message "$caddy_output")"
after=$(listeners_of "$caddy_output")
# 2. Every listener it adds must be free where Caddy runs: a throwaway Caddy binds them for a moment.
added=$(printf '%s\n' "$after" | while read -r address; do
  [ -n "$address" ] || continue
  printf '%s\n' "$before" | grep -qxF "$address" || printf '%s\n' "$address"
done)
if [ -n "$added" ]; then
  list=$(printf '%s\n' "$added" | sed 's/.*/"&"/' | paste -sd, -)
  printf '{"admin":{"disabled":true},"apps":{"http":{"servers":{"probe":{"listen":[%s],"automatic_https":{"disable":true}}}}}}\n' \
    "$list" >"$probe"
  chmod 0644 "$probe"
  status=0
  # shellcheck disable=SC2086
  caddy_output=$($exec_prefix timeout 2 caddy run --config "$probe_seen_by_caddy" 2>&1) || status=$?
  # Still running when stopped means the listeners were bound: coreutils' timeout exits 124, busybox's
  # passes on Caddy's own exit on SIGTERM (0) or the signal (143, 137). Caddy exits 1 when it cannot bind.
  case $status in
  0 | 124 | 137 | 143) ;;
  *) fail "cannot listen on $(printf '%s' "$added" | paste -sd' ' -): $(caddy_message "$caddy_output")" ;;
  esac
fi
# 3. Reload, and believe only its exit code.
if reload; then
  rm -f "$backup"
  committed=yes
  echo "edge-route: $site: applied"
  exit 0
fi
fail "reload refused the new fragment: $(caddy_message "$caddy_output")"
