#!/bin/sh
# Grandfather-father-son retention for one site's backup directory, run after a verified dump.
#
#   retention.sh BACKUP_DIR NAME DAILY WEEKLY MONTHLY
#
# NAME is the new dump's base name, "<site>-YYYYMMDDTHHMMSSZ" (UTC), already in daily/ with its
# manifest. It is promoted (hard-linked, no extra space) to weekly/ when weekly/ holds nothing from
# its ISO week yet, and to monthly/ when monthly/ holds nothing from its month yet. Then each tier
# keeps its newest DAILY, WEEKLY and MONTHLY dumps. A dump counts only with its manifest.
set -eu
[ "$#" -eq 5 ] || {
  echo "usage: retention.sh BACKUP_DIR NAME DAILY WEEKLY MONTHLY" >&2
  exit 2
}
dir=$1
name=$2
keep_daily=$3
keep_weekly=$4
keep_monthly=$5

stamp=${name##*-}
case $stamp in
[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z) ;;
*)
  echo "retention: bad dump name $name" >&2
  exit 2
  ;;
esac
if [ ! -f "$dir/daily/$name.dump" ] || [ ! -f "$dir/daily/$name.manifest.json" ]; then
  echo "retention: $name is not a verified dump in $dir/daily" >&2
  exit 1
fi
mkdir -p "$dir/weekly" "$dir/monthly"

# Verified dumps of a tier, oldest first (names sort by time).
dumps() {
  for m in "$1"/*.manifest.json; do
    [ -f "$m" ] || continue
    base=${m%.manifest.json}
    [ -f "$base.dump" ] && basename "$base"
  done | sort
}

# The period key of a dump name: ISO week or month.
period() {
  s=${1##*-}
  if [ "$2" = week ]; then date -u -d "$(printf '%s' "$s" | cut -c1-8)" +%G-W%V; else printf '%s' "$s" | cut -c1-6; fi
}

promote() { # promote TIER KIND KEY
  # Dumps arrive in time order, so only the tier's newest can share the new one's period.
  newest=$(dumps "$dir/$1" | tail -n 1)
  if [ -n "$newest" ] && [ "$(period "$newest" "$2")" = "$3" ]; then return 0; fi
  ln -f "$dir/daily/$name.dump" "$dir/$1/$name.dump"
  if [ -f "$dir/daily/$name.globals.sql" ]; then ln -f "$dir/daily/$name.globals.sql" "$dir/$1/$name.globals.sql"; fi
  ln -f "$dir/daily/$name.manifest.json" "$dir/$1/$name.manifest.json"
}

prune() { # prune TIER KEEP
  total=$(dumps "$dir/$1" | wc -l)
  excess=$((total - $2))
  [ "$excess" -gt 0 ] || return 0
  dumps "$dir/$1" | head -n "$excess" | while read -r old; do
    # The dump this run made is never pruned (a clock set back would sort it oldest).
    [ "$old" != "$name" ] || continue
    rm -f "$dir/$1/$old.manifest.json" "$dir/$1/$old.dump" "$dir/$1/$old.globals.sql"
  done
}

promote weekly week "$(period "$name" week)"
promote monthly month "$(period "$name" month)"
prune daily "$keep_daily"
prune weekly "$keep_weekly"
prune monthly "$keep_monthly"
