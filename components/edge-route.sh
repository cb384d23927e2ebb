#!/bin/sh
# Applies or removes one site's Caddy fragment on an edge, without ever leaving a broken config live.
#
#   edge-route.sh apply  SITE SITES_DIR CADDYFILE ADMIN [EXEC...]   (the fragment comes on stdin)
#   edge-route.sh remove SITE SITES_DIR CADDYFILE ADMIN [EXEC...]
#
# SITES_DIR is the fragment directory as this shell sees it; CADDYFILE the main Caddyfile and ADMIN
# the admin address as Caddy sees them; EXEC runs a command where Caddy runs (e.g.
# "docker exec agi-edge"; empty: here).
#
# apply writes the fragment atomically, then checks before Caddy is touched: the whole config must
# adapt, and every listener it adds must be free (a port clash validates, then fails to reload, and
# a failed reload briefly drops TLS handshakes on Caddy 2.6). Then it reloads and checks the reload's
# exit code. On any failure the previous fragment is put back (or the new one removed), Caddy is
# reloaded if it was touched, and the script exits 1 with Caddy's message. An unchanged fragment is
# not reloaded. remove takes the fragment away and reloads; on failure it puts it back.
# Runs on one edge are serialised with a lock. Fragments hold no secrets; none of their text is printed.
set -eu

usage() {
  echo "usage: edge-route.sh apply|remove SITE SITES_DIR CADDYFILE ADMIN [EXEC...]" >&2
  exit 2
}
[ "$#" -ge 5 ] || usage
action=$1
site=$2
dir=$3
caddyfile=$4
admin=$5
shift 5
case $action in apply | remove) ;; *) usage ;; esac
case $site in '' | *[!a-z0-9-]*)
  echo "edge-route: bad site name" >&2
  exit 2
  ;;
esac

target="$dir/$site.caddy"
backup="$dir/.$site.caddy.prev"
incoming="$dir/.$site.caddy.new.$$"
probe="$dir/.probe-$site.json"
probe_seen_by_caddy="$(dirname "$caddyfile")/sites.d/.probe-$site.json"

# Caddy's own words: its error lines, else the last lines it printed.
caddy_message() {
  errors=$(printf '%s\n' "$1" | grep -E '^Error|"level":"error"' | tail -n 3 || true)
  if [ -n "$errors" ]; then printf '%s\n' "$errors"; else printf '%s\n' "$1" | tail -n 3; fi
}

# Runs caddy where Caddy runs. EXEC is a plain word list (no quoting inside), split on purpose.
exec_caddy() {
  # shellcheck disable=SC2086
  caddy_output=$($exec_prefix caddy "$@" 2>&1) && return 0
  return 1
}

reload() {
  exec_caddy reload --config "$caddyfile" --adapter caddyfile --address "$admin"
}

# Listener addresses of the config as the files now stand, one per line, sorted.
listeners() {
  # shellcheck disable=SC2086
  json=$($exec_prefix caddy adapt --config "$caddyfile" --adapter caddyfile 2>/dev/null) || return 1
  printf '%s\n' "$json" | grep -o '"listen":\[[^]]*\]' | sed 's/^"listen":\[//; s/\]$//' |
    tr ',' '\n' | tr -d '"' | sort -u
}

# Put back what was there before this run, reload if Caddy was touched; report and fail.
restore_and_fail() {
  failure=$1
  touched=$2
  if [ -f "$backup" ]; then mv -f "$backup" "$target"; else rm -f "$target"; fi
  restored="nothing was reloaded"
  if [ "$touched" = yes ]; then
    if reload; then
      restored="the previous configuration is back in force"
    else
      restored="reloading the previous configuration failed too: $(caddy_message "$caddy_output")"
    fi
  fi
  echo "edge-route: $site: $failure; $restored" >&2
  exit 1
}

exec_prefix="$*"
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
trap 'rm -f "$incoming" "$probe"' EXIT

if [ "$action" = remove ]; then
  if [ ! -f "$target" ]; then
    echo "edge-route: $site: already absent"
    exit 0
  fi
  rm -f "$backup"
  mv -f "$target" "$backup"
  if reload; then
    rm -f "$backup"
    echo "edge-route: $site: removed"
    exit 0
  fi
  restore_and_fail "reload failed after removing the fragment: $(caddy_message "$caddy_output")" yes
fi

cat >"$incoming"
if [ ! -s "$incoming" ]; then
  echo "edge-route: $site: empty fragment refused" >&2
  exit 2
fi
if [ -f "$target" ] && cmp -s "$incoming" "$target"; then
  echo "edge-route: $site: unchanged"
  exit 0
fi
before=$(listeners || true)
rm -f "$backup"
if [ -f "$target" ]; then cp -p "$target" "$backup"; fi
chmod 0644 "$incoming"
mv -f "$incoming" "$target"

# 1. The whole configuration must adapt (syntax, unknown directives, bad values).
if ! exec_caddy adapt --config "$caddyfile" --adapter caddyfile; then
  restore_and_fail "the configuration does not adapt: $(caddy_message "$caddy_output")" no
fi
# 2. Every listener it adds must be free where Caddy runs: a throwaway Caddy binds them for a moment.
after=$(listeners)
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
  case $status in
  124 | 143) ;; # still running when stopped: the listeners are free
  *) restore_and_fail "cannot listen on $(printf '%s' "$added" | paste -sd' ' -): $(caddy_message "$caddy_output")" no ;;
  esac
fi
# 3. Reload, and believe only its exit code.
if reload; then
  rm -f "$backup"
  echo "edge-route: $site: applied"
  exit 0
fi
restore_and_fail "reload refused the new fragment: $(caddy_message "$caddy_output")" yes
