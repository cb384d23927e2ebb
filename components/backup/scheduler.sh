#!/bin/sh
# The backup container's scheduler: runs pg-backup.sh whenever BACKUP_SCHEDULE (five-field cron,
# UTC) matches the current minute. The database image has no cron daemon and none can be installed
# into a pinned image at run time, so this is a small one: it supports the usual field syntax
# (*, N, a-b, */n, a-b/n and comma lists), with day-of-week 0-7 (0 and 7 are Sunday) and cron's
# rule that when both day-of-month and day-of-week are restricted, either may match.
#
#   scheduler.sh                       run forever (the container's entrypoint)
#   scheduler.sh --matches CRON "MIN HOUR DOM MON DOW"   exit 0 if CRON matches that time
#
# Every minute it touches $SCHEDULER_HEARTBEAT (the healthcheck reads it). A run that is still going
# when the next one is due is not doubled: pg-backup.sh takes a lock.
set -euf # -f: no globbing, "*" is a cron field

# field_matches FIELD VALUE MIN MAX
field_matches() {
  value=$2
  old_ifs=$IFS
  IFS=,
  for part in $1; do
    IFS=$old_ifs
    step=1
    range=$part
    case $part in */*)
      step=${part#*/}
      range=${part%/*}
      ;;
    esac
    case $range in
    \*)
      lo=$3
      hi=$4
      ;;
    *-*)
      lo=${range%-*}
      hi=${range#*-}
      ;;
    *)
      lo=$range
      hi=$range
      [ "$step" = 1 ] || hi=$4
      ;;
    esac
    case "$lo$hi$step" in *[!0-9]* | '') return 2 ;; esac
    # No leading zeros for the shell's arithmetic ("08" is not octal here), and no step 0.
    strip "$lo"
    lo=$stripped
    strip "$hi"
    hi=$stripped
    strip "$step"
    step=$stripped
    [ "$step" -gt 0 ] || return 2
    if [ "$value" -ge "$lo" ] && [ "$value" -le "$hi" ] && [ $(((value - lo) % step)) -eq 0 ]; then
      return 0
    fi
  done
  IFS=$old_ifs
  return 1
}

# cron_matches "CRON" "MIN HOUR DOM MON DOW"
cron_matches() {
  # shellcheck disable=SC2086 # split the fields on purpose
  set -- $1 $2
  [ "$#" -eq 10 ] || return 2
  field_matches "$1" "$6" 0 59 || return $?
  field_matches "$2" "$7" 0 23 || return $?
  field_matches "$4" "$9" 1 12 || return $?
  dow=${10}
  dom_ok=1
  dow_ok=1
  field_matches "$3" "$8" 1 31 && dom_ok=0
  if field_matches "$5" "$dow" 0 7; then dow_ok=0; elif [ "$dow" -eq 0 ] && field_matches "$5" 7 0 7; then dow_ok=0; fi
  # As in standard cron: a day field starting with "*" (also "*/2") does not restrict the day; when
  # both day fields restrict it, either may match.
  dom_star=no
  dow_star=no
  case $3 in \**) dom_star=yes ;; esac
  case $5 in \**) dow_star=yes ;; esac
  if [ "$dom_star" = no ] && [ "$dow_star" = no ]; then
    [ "$dom_ok" -eq 0 ] || [ "$dow_ok" -eq 0 ]
  else
    [ "$dom_ok" -eq 0 ] && [ "$dow_ok" -eq 0 ]
  fi
}

# cron_valid "CRON": 0 if every field parses, 2 if not (checked field by field, whatever the time).
cron_valid() {
  # shellcheck disable=SC2086 # split the fields on purpose
  set -- $1
  [ "$#" -eq 5 ] || return 2
  for field in "$@"; do
    status=0
    field_matches "$field" 0 0 99 || status=$?
    [ "$status" -ne 2 ] || return 2
  done
  return 0
}

# strip NUMBER: the number without its leading zeros, in $stripped (no process: the matcher runs it
# for every field).
strip() {
  stripped=$1
  while :; do
    case $stripped in
    0[0-9]*) stripped=${stripped#0} ;;
    *) break ;;
    esac
  done
}

if [ "${1:-}" = --matches ]; then
  cron_valid "$2" || exit 2
  cron_matches "$2" "$3"
  exit $?
fi

: "${BACKUP_SCHEDULE:?BACKUP_SCHEDULE is required}"
job=${BACKUP_JOB:-$(cd "$(dirname "$0")" && pwd)/pg-backup.sh}
heartbeat=${SCHEDULER_HEARTBEAT:-/tmp/agi-scheduler.alive}
if ! cron_valid "$BACKUP_SCHEDULE"; then
  echo "scheduler: BACKUP_SCHEDULE is not a cron schedule this scheduler understands: $BACKUP_SCHEDULE" >&2
  exit 2
fi
echo "scheduler: backups of ${SITE:-this site} at \"$BACKUP_SCHEDULE\" (UTC)"
# The heartbeat keeps beating during a long backup; a stop is passed on to a running backup, which
# cleans up after itself, before the scheduler exits.
(while :; do
  touch "$heartbeat"
  sleep 30
done) </dev/null >/dev/null 2>&1 &
heartbeat_pid=$!
job_pid=
sleep_pid=
stop() {
  kill "$heartbeat_pid" 2>/dev/null || true
  # The wait for the next minute goes too: a stray sleep would hold the scheduler's output open.
  if [ -n "$sleep_pid" ]; then kill "$sleep_pid" 2>/dev/null || true; fi
  if [ -n "$job_pid" ]; then
    kill -TERM "$job_pid" 2>/dev/null || true
    wait "$job_pid" 2>/dev/null || true
  fi
  exit 0
}
trap stop TERM INT
while :; do
  # shellcheck disable=SC2046 # five numbers
  set -- $(date -u '+%M %H %d %m %w')
  now=
  for field in "$1" "$2" "$3" "$4"; do
    strip "$field"
    now="$now$stripped "
  done
  now="$now$5"
  if cron_matches "$BACKUP_SCHEDULE" "$now"; then
    sh "$job" &
    job_pid=$!
    wait "$job_pid" || true # the job logs and records its own failure
    job_pid=
  fi
  # Sleep to the start of the next minute; in the background so a stop signal is not held up.
  strip "$(date -u +%S)"
  sleep $((60 - stripped)) &
  sleep_pid=$!
  wait "$sleep_pid" || true
  sleep_pid=
done
