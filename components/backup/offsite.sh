#!/bin/sh
# Off-site copies of a site's verified dumps. Each dump and its manifest are encrypted here, on the
# host, to an age public key (the private key never rests on the host), and uploaded to S3-compatible
# storage by a short-lived container of the uploader image (rclone), the only process that receives
# the storage credentials. The remote keeps its own retention; nothing here ever deletes a local file.
#
#   offsite.sh upload          every verified local dump that the remote lacks and its retention
#                              keeps, newest first; then the remote's retention; records the result
#                              in BACKUP_DIR/offsite.json. A failed upload deletes nothing remotely
#                              and is retried at the next run: what is missing is found by listing.
#   offsite.sh list            the site's complete off-site dumps (dump and manifest), oldest first
#   offsite.sh fetch NAME|latest
#                              downloads one, decrypts it with the age identity read from standard
#                              input (kept in memory only) into BACKUP_DIR/offsite/, and prints
#                              offsite/NAME.dump for pg-restore.sh, which verifies it as any dump
#
# Environment (site-backup.sh sets it from the job's words):
#   SITE, BACKUP_DIR
#   OFFSITE_PATH       bucket[/prefix] on the remote; the site's objects are OFFSITE_PATH/SITE/NAME.*.age
#   OFFSITE_RECIPIENT  the age public key (age1...)                                  (upload)
#   OFFSITE_KEEP       D:W:M: every dump of the last D days that have one, and the newest of each of
#                      the last W ISO weeks and M months that have one
#   OFFSITE_ENV        file of RCLONE_CONFIG_OFFSITE_* lines (0600): the remote and its credentials
#   OFFSITE_IMAGE      the uploader image, rclone as its entrypoint
#   OFFSITE_RETRIES    rclone's retries of a failed transfer (default 3), OFFSITE_RETRY_SLEEP (10s)
#   OFFSITE_RUNNER     "local": rclone on this machine with OFFSITE_ENV's lines (the tests)
#   OFFSITE_NOW        the time to stamp (tests); default now
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091 # pg-lib.sh, installed beside this script
. "$here/pg-lib.sh"
usage() {
  echo "usage: offsite.sh (upload | list | fetch NAME|latest)" >&2
  exit 2
}
[ "$#" -ge 1 ] || usage
action=$1
shift
case $action in
upload | list) [ "$#" -eq 0 ] || usage ;;
fetch) [ "$#" -eq 1 ] || usage ;;
*) usage ;;
esac
: "${SITE:?SITE is required}" "${BACKUP_DIR:?BACKUP_DIR is required}"
: "${OFFSITE_PATH:?OFFSITE_PATH is required}" "${OFFSITE_ENV:?OFFSITE_ENV is required}"
if [ "${OFFSITE_RUNNER:-docker}" != local ]; then : "${OFFSITE_IMAGE:?OFFSITE_IMAGE is required}"; fi
# A site's name is lower-case letters, digits and "-" (it reaches a sed pattern and object names).
case $SITE in '' | -* | *[!a-z0-9-]*)
  echo "offsite: SITE must be a site's name" >&2
  exit 2
  ;;
esac
remote="offsite:$OFFSITE_PATH/$SITE"
work=$(mktemp -d "${TMPDIR:-/tmp}/agi-offsite.XXXXXX")
# What a run leaves on failure or when stopped: its work files, the encrypted staging copy, and a
# half-decrypted download. Never a local dump.
stage="$BACKUP_DIR/.offsite-staging"
download="$BACKUP_DIR/offsite/.download"
trap 'rm -rf "$work" "$stage" "$download"' EXIT
trap 'exit 130' HUP INT TERM

if [ ! -r "$OFFSITE_ENV" ]; then
  echo "offsite $SITE: the remote's settings $OFFSITE_ENV are missing; has the stack been deployed?" >&2
  exit 1
fi
if ! command -v age >/dev/null 2>&1; then
  echo "offsite $SITE: age is not installed on this host (apt-get install age)" >&2
  exit 1
fi

# rclone MOUNT (ro|rw) ARGS...: rclone with ARGS, where /upload stands for the host directory MOUNT.
# In the uploader container: its own user, no capabilities, a read-only root, the credentials from
# OFFSITE_ENV and nothing else of this host but MOUNT.
rclone_run() {
  mount=$1 mode=$2
  shift 2
  common="--retries ${OFFSITE_RETRIES:-3} --retries-sleep ${OFFSITE_RETRY_SLEEP:-10s} --low-level-retries 5 --contimeout 15s --timeout 60s"
  if [ "${OFFSITE_RUNNER:-docker}" = local ]; then
    n=$#
    for a in "$@"; do
      case $a in /upload*) a="$mount${a#/upload}" ;; esac
      set -- "$@" "$a"
    done
    shift "$n"
    (
      while IFS= read -r line; do
        case $line in '' | '#'*) ;; *) export "${line?}" ;; esac
      done <"$OFFSITE_ENV"
      # shellcheck disable=SC2086 # plain option words
      exec rclone --config /dev/null $common "$@"
    )
    return $?
  fi
  ro=
  [ "$mode" = rw ] || ro=,readonly
  # A container a killed run left (docker's client was killed, not the container); this run holds
  # the site's job lock.
  docker rm -f "$SITE-offsite" >/dev/null 2>&1 || true
  # shellcheck disable=SC2086 # plain option words
  docker run --rm --name "$SITE-offsite" --label "agi.site=$SITE" --label agi.role=offsite \
    --network "${OFFSITE_NETWORK:-bridge}" --memory 128m --cap-drop ALL --security-opt no-new-privileges \
    --read-only --tmpfs /tmp:size=16m --user "$(id -u):$(id -g)" -e HOME=/tmp \
    --env-file "$OFFSITE_ENV" --mount "type=bind,source=$mount,target=/upload$ro" \
    "$OFFSITE_IMAGE" --config /dev/null $common "$@"
}

last_lines() { printf '%s\n' "$1" | grep -v 'NOTICE: Config file' | tail -n 2 | tr '\n' ' '; }

# The site's complete remote dumps (both objects), oldest first, into FILE; other objects are
# ignored (and never deleted). The names' one pattern: <site>-<UTC stamp>.
stamp_re='[0-9]\{8\}T[0-9]\{6\}Z'
remote_names() {
  if ! out=$(rclone_run "$work" ro lsf --files-only "$remote/" 2>&1 >"$work/remote.lsf"); then
    echo "cannot list $remote: $(last_lines "$out")"
    return 1
  fi
  sed -n "s/^\\($SITE-$stamp_re\\)\\.dump\\.age\$/\\1/p" "$work/remote.lsf" | sort >"$work/remote.dumps"
  sed -n "s/^\\($SITE-$stamp_re\\)\\.manifest\\.json\\.age\$/\\1/p" "$work/remote.lsf" | sort >"$work/remote.manifests"
  comm -12 "$work/remote.dumps" "$work/remote.manifests" >"$1"
}

if [ "$action" = list ]; then
  if ! err=$(remote_names "$work/complete"); then
    echo "offsite $SITE: $err" >&2
    exit 1
  fi
  cat "$work/complete"
  exit 0
fi

if [ "$action" = fetch ]; then
  want=$1
  identity=$(cat)
  case $identity in *AGE-SECRET-KEY-1*) ;; *)
    echo "offsite $SITE: no age identity on standard input" >&2
    exit 2
    ;;
  esac
  if ! err=$(remote_names "$work/complete"); then
    echo "offsite $SITE: $err" >&2
    exit 1
  fi
  case $want in latest | "$SITE"-*) ;; *)
    echo "offsite $SITE: $want is not a dump of this site (<site>-<UTC stamp>, as --list shows)" >&2
    exit 2
    ;;
  esac
  if [ "$want" = latest ]; then
    name=$(tail -n 1 "$work/complete")
    if [ -z "$name" ]; then
      echo "offsite $SITE: no complete dump (dump and manifest) under $remote" >&2
      exit 1
    fi
  else
    name=${want%.dump}
    if ! grep -qxF "$name" "$work/complete"; then
      if grep -qxF "$name" "$work/remote.dumps"; then
        echo "offsite $SITE: $name has no manifest under $remote: it never finished uploading; refusing it" >&2
      else
        echo "offsite $SITE: no dump $name under $remote (npm run restore -- --from offsite --list shows them)" >&2
      fi
      exit 1
    fi
  fi
  # One fetched dump at a time: the previous one (and anything half-done) goes.
  dest="$BACKUP_DIR/offsite"
  rm -rf "$dest"
  mkdir -m 700 "$dest" "$dest/.download"
  printf '%s.dump.age\n%s.manifest.json.age\n' "$name" "$name" >"$dest/.download/.files"
  echo "offsite $SITE: downloading $name" >&2
  if ! out=$(rclone_run "$dest/.download" rw copy --files-from-raw /upload/.files "$remote" /upload 2>&1); then
    echo "offsite $SITE: downloading $name failed: $(last_lines "$out")" >&2
    rm -rf "$dest"
    exit 1
  fi
  for f in "$name.manifest.json" "$name.dump"; do
    if [ ! -s "$dest/.download/$f.age" ]; then
      echo "offsite $SITE: $f.age did not arrive from $remote" >&2
      rm -rf "$dest"
      exit 1
    fi
    # age authenticates what it decrypts: a changed byte or another key fails here.
    if ! out=$(printf '%s\n' "$identity" | age -d -i - -o "$dest/.download/$f" "$dest/.download/$f.age" 2>&1); then
      echo "offsite $SITE: cannot decrypt $f.age: $(printf '%s\n' "$out" | grep -m 1 'error' || printf '%s' "$out" | head -n 1) (wrong identity, or the object was damaged)" >&2
      rm -rf "$dest"
      exit 1
    fi
    rm -f "$dest/.download/$f.age"
  done
  mv "$dest/.download/$name.dump" "$dest/$name.dump"
  mv "$dest/.download/$name.manifest.json" "$dest/$name.manifest.json"
  rm -rf "$dest/.download"
  echo "offsite/$name.dump"
  exit 0
fi

# upload
: "${OFFSITE_RECIPIENT:?OFFSITE_RECIPIENT is required}" "${OFFSITE_KEEP:?OFFSITE_KEEP is required}"
# Retention decides what is deleted: its three numbers are checked before anything else.
if ! printf '%s\n' "$OFFSITE_KEEP" | grep -qx '[0-9]\{1,4\}:[0-9]\{1,4\}:[0-9]\{1,4\}' || [ "$OFFSITE_KEEP" = 0:0:0 ]; then
  echo "offsite $SITE: OFFSITE_KEEP must be DAYS:WEEKS:MONTHS, not all 0" >&2
  exit 2
fi
now=${OFFSITE_NOW:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
record="$BACKUP_DIR/offsite.json"
last_success=null newest=null
if [ -f "$BACKUP_DIR/.offsite-last-success" ]; then last_success=$(json_string "$(cat "$BACKUP_DIR/.offsite-last-success")"); fi
uploaded=0 pending=0 error=
write_record() {
  tmp="$record.$$"
  {
    printf '{\n  "site": %s,\n  "remote": %s,\n' "$(json_string "$SITE")" "$(json_string "$remote")"
    printf '  "lastAttempt": %s,\n  "lastSuccess": %s,\n' "$(json_string "$now")" "$last_success"
    printf '  "newestOffsite": %s,\n  "uploaded": %s,\n  "pending": %s,\n' "$newest" "$uploaded" "$pending"
    if [ -n "$error" ]; then printf '  "lastError": %s\n}\n' "$(json_string "$error")"; else printf '  "lastError": null\n}\n'; fi
  } >"$tmp"
  mv -f "$tmp" "$record"
}
fail() {
  error=$1
  write_record
  echo "offsite $SITE: FAILED: $error; local dumps are untouched, the next run retries" >&2
  exit 1
}

# GFS over stamps: every dump of the last D days that have one (a newer dump of the same day never
# pushes out an older one: the day a host was lost keeps its last real dump), and the newest of each
# of the last W ISO weeks and M months that have one. A name whose stamp is not a real time is never
# kept by this, and never deleted either (see below).
keep_set() { # stdin: names newest first; stdout: kept names
  daily=${OFFSITE_KEEP%%:*} monthly=${OFFSITE_KEEP##*:}
  weekly=${OFFSITE_KEEP#*:}
  weekly=${weekly%:*}
  d=0 w=0 m=0 lastd='' lastw='' lastm=''
  while IFS= read -r n; do
    st=${n#"$SITE"-}
    day=${st%%T*}
    month=${day%??}
    if ! week=$(date -u -d "$(printf '%s' "$day" | sed 's/^\(....\)\(..\)\(..\)$/\1-\2-\3/')" +%G%V 2>/dev/null); then
      continue
    fi
    keep=
    if [ "$day" != "$lastd" ]; then
      lastd=$day
      d=$((d + 1))
    fi
    [ "$d" -gt "$daily" ] || keep=yes
    if [ "$week" != "$lastw" ]; then
      lastw=$week
      if [ "$w" -lt "$weekly" ]; then w=$((w + 1)) keep=yes; fi
    fi
    if [ "$month" != "$lastm" ]; then
      lastm=$month
      if [ "$m" -lt "$monthly" ]; then m=$((m + 1)) keep=yes; fi
    fi
    [ -z "$keep" ] || printf '%s\n' "$n"
  done
}

# Verified local dumps (a manifest beside the dump), in any tier, once each.
for m in "$BACKUP_DIR"/daily/*.manifest.json "$BACKUP_DIR"/weekly/*.manifest.json "$BACKUP_DIR"/monthly/*.manifest.json; do
  if [ ! -f "$m" ] || [ ! -f "${m%.manifest.json}.dump" ]; then continue; fi
  n=$(basename "$m" .manifest.json)
  if printf '%s\n' "$n" | grep -qx "$SITE-$stamp_re"; then printf '%s %s\n' "$n" "${m%.manifest.json}"; fi
done | sort -u -k1,1 >"$work/local"
cut -d' ' -f1 "$work/local" >"$work/local.names"

# plan_keep: $work/valid (every name, here or there, whose stamp is a real time) and $work/keep (what
# the retention keeps of them), both sorted; fails rather than give a short list.
plan_keep() {
  sort -u "$work/complete" "$work/local.names" "$work/remote.dumps" "$work/remote.manifests" |
    while IFS= read -r n; do
      st=${n#"$SITE"-}
      if date -u -d "$(printf '%s' "$st" | sed 's/^\(....\)\(..\)\(..\)T\(..\)\(..\)\(..\)Z$/\1-\2-\3 \4:\5:\6/')" >/dev/null 2>&1; then
        printf '%s\n' "$n"
      fi
    done >"$work/valid" || return 1
  # Kept among the dumps that are or can be complete there: complete ones and local ones.
  sort -u "$work/complete" "$work/local.names" | comm -12 - "$work/valid" | sort -r >"$work/candidates" || return 1
  keep_set <"$work/candidates" >"$work/keep.unsorted" || return 1
  sort "$work/keep.unsorted" >"$work/keep"
}

err=$(remote_names "$work/complete") || fail "$err"
plan_keep || fail "cannot work out the remote's retention"
# To send: kept, here, and not complete there; newest first.
comm -12 "$work/keep" "$work/local.names" | comm -23 - "$work/complete" | sort -r >"$work/send"
pending=$(wc -l <"$work/send" | tr -d ' ')

while IFS= read -r n; do
  path=$(grep -F "$n " "$work/local" | cut -d' ' -f2-)
  rm -rf "$stage"
  mkdir -m 700 "$stage"
  for f in "$n.dump" "$n.manifest.json"; do
    src="$(dirname "$path")/$f"
    if ! out=$(age -r "$OFFSITE_RECIPIENT" -o "$stage/$f.age" "$src" 2>&1); then
      rm -rf "$stage"
      fail "cannot encrypt $f: $(printf '%s\n' "$out" | grep -m 1 'error' || printf '%s' "$out" | head -n 1)"
    fi
  done
  # The dump first, its manifest last: a remote dump counts only with its manifest.
  for f in "$n.dump.age" "$n.manifest.json.age"; do
    if ! out=$(rclone_run "$stage" ro copyto "/upload/$f" "$remote/$f" 2>&1); then
      rm -rf "$stage"
      fail "uploading $f failed: $(last_lines "$out")"
    fi
  done
  # What the remote now lists must be what was sent, byte for byte in size.
  if ! out=$(rclone_run "$stage" ro lsf --files-only --format sp "$remote/" 2>&1 >"$work/sizes"); then
    rm -rf "$stage"
    fail "cannot list $remote after uploading $n: $(last_lines "$out")"
  fi
  for f in "$n.dump.age" "$n.manifest.json.age"; do
    size=$(wc -c <"$stage/$f" | tr -d ' ')
    if ! grep -qx "$size;$f" "$work/sizes"; then
      rm -rf "$stage"
      fail "$f is not on $remote with its $size bytes after the upload"
    fi
  done
  rm -rf "$stage"
  uploaded=$((uploaded + 1))
  pending=$((pending - 1))
  echo "offsite $SITE: uploaded $n"
done <"$work/send"

# The remote's retention, only after every upload of this run succeeded: complete dumps outside the
# keep set, and halves of unfinished uploads that no local dump can complete any more.
err=$(remote_names "$work/complete") || fail "$err"
if [ -s "$work/complete" ]; then newest=$(json_string "$(tail -n 1 "$work/complete")"); fi
plan_keep || fail "cannot work out the remote's retention"
# Never a deletion that would leave the newest complete dump out: a wrong plan deletes nothing.
last=$(comm -12 "$work/complete" "$work/valid" | tail -n 1)
if [ -n "$last" ] && ! grep -qxF "$last" "$work/keep"; then
  fail "the retention plan does not keep the newest dump $last; deleting nothing"
fi
# Deleted: complete dumps outside the keep set, and halves of unfinished uploads that no local dump
# can complete any more; only names whose stamp is a real time (anything else is left alone).
{
  comm -23 "$work/complete" "$work/keep"
  sort -u "$work/remote.dumps" "$work/remote.manifests" | comm -23 - "$work/complete" | comm -23 - "$work/local.names"
} | sort -u | comm -12 - "$work/valid" | while IFS= read -r n; do
  printf '%s.dump.age\n%s.manifest.json.age\n' "$n" "$n"
done >"$work/delete"
if [ -s "$work/delete" ]; then
  if ! out=$(rclone_run "$work" ro delete --files-from-raw /upload/delete "$remote" 2>&1); then
    fail "applying the remote's retention failed: $(last_lines "$out")"
  fi
  echo "offsite $SITE: retention removed $(($(wc -l <"$work/delete") / 2)) dump(s) from $remote"
fi
printf '%s' "$now" >"$BACKUP_DIR/.offsite-last-success"
last_success=$(json_string "$now")
write_record
echo "offsite $SITE: ok: $uploaded uploaded, $(($(wc -l <"$work/complete") - $(wc -l <"$work/delete") / 2)) on $remote"
