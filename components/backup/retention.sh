#!/bin/sh
# Grandfather-father-son retention for one site's backup directory, run after a verified dump.
#
#   retention.sh BACKUP_DIR NAME DAILY WEEKLY MONTHLY
#
# NAME is the new dump's base name, "<site>-YYYYMMDDTHHMMSSZ" (UTC), already in daily/ with its
# manifest. It is promoted (hard-linked, no extra space) to weekly/ when weekly/ holds nothing from
# its ISO week yet, and to monthly/ when monthly/ holds nothing from its month yet. Then each tier
# keeps its newest DAILY, WEEKLY and MONTHLY dumps. A dump counts only with its manifest.
#
# Shell builtins only on the common path (no process per file or per date): one `ln` per promoted
# file and one `rm` per tier that has something to prune.
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
if [ ! -d "$dir/weekly" ] || [ ! -d "$dir/monthly" ]; then mkdir -p "$dir/weekly" "$dir/monthly"; fi

# Counts the verified dumps of a tier (`count`) and names its newest (`newest`, empty when none).
# The glob expands sorted and names sort by time, so the last one seen is the newest.
dumps() { # dumps TIER
  count=0
  newest=
  for m in "$dir/$1"/*.manifest.json; do
    [ -f "$m" ] || continue
    base=${m%.manifest.json}
    [ -f "$base.dump" ] || continue
    count=$((count + 1))
    newest=${base##*/}
  done
}

# Days since 1970-01-01 of a dump name's date (days-from-civil, integer arithmetic only).
days() { # days NAME -> $day
  s=${1##*-}
  d8=${s%%T*}
  y=${d8%????}
  md=${d8#????}
  m=${md%??}
  d=${md#??}
  m=${m#0}
  d=${d#0}
  if [ "$m" -le 2 ]; then
    y=$((y - 1))
    m=$((m + 9))
  else
    m=$((m - 3))
  fi
  era=$((y / 400))
  yoe=$((y - era * 400))
  doy=$(((153 * m + 2) / 5 + d - 1))
  day=$((era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468))
}

# The period key of a dump name: its ISO week (weeks run Monday to Sunday; 1970-01-01 was a
# Thursday, so day 0 is the fourth day of week 0) or its month.
period() { # period NAME week|month -> $key
  if [ "$2" = week ]; then
    days "$1"
    key=$(((day + 3) / 7))
  else
    s=${1##*-}
    key=${s%??T*}
  fi
}

promote() { # promote TIER KIND
  # Dumps arrive in time order, so only the tier's newest can share the new one's period.
  dumps "$1"
  if [ -n "$newest" ]; then
    period "$newest" "$2"
    theirs=$key
    period "$name" "$2"
    [ "$key" != "$theirs" ] || return 0
  fi
  ln -f "$dir/daily/$name.dump" "$dir/$1/$name.dump"
  if [ -f "$dir/daily/$name.globals.sql" ]; then ln -f "$dir/daily/$name.globals.sql" "$dir/$1/$name.globals.sql"; fi
  ln -f "$dir/daily/$name.manifest.json" "$dir/$1/$name.manifest.json"
}

prune() { # prune TIER KEEP
  tier=$1
  dumps "$tier"
  excess=$((count - $2))
  [ "$excess" -gt 0 ] || return 0
  # The oldest `excess` verified dumps, collected as arguments of a single rm.
  set --
  for m in "$dir/$tier"/*.manifest.json; do
    [ "$excess" -gt 0 ] || break
    [ -f "$m" ] || continue
    base=${m%.manifest.json}
    [ -f "$base.dump" ] || continue
    excess=$((excess - 1))
    # The dump this run made is never pruned (a clock set back would sort it oldest).
    [ "${base##*/}" != "$name" ] || continue
    set -- "$@" "$m" "$base.dump" "$base.globals.sql"
  done
  [ "$#" -eq 0 ] || rm -f "$@"
}

promote weekly week
promote monthly month
prune daily "$keep_daily"
prune weekly "$keep_weekly"
prune monthly "$keep_monthly"
