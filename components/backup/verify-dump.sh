#!/bin/sh
# Proves a custom-format dump readable from its first byte to its last: the table of contents, then
# every data block decompressed (pg_restore to /dev/null). `pg_restore --list` alone reads only the
# table of contents and passes a truncated file.
#
#   verify-dump.sh [--toc] FILE [SHA256]   with SHA256, the file must also match the manifest's
#                                          checksum; --toc reads the table of contents only (the
#                                          checksum then vouches for the rest: a restore reads it)
#
# pg_restore reads the file on its standard input, so it may run elsewhere (PG_EXEC, see pg-lib.sh).
set -eu
# shellcheck disable=SC1091 # pg-lib.sh, installed beside this script
. "$(cd "$(dirname "$0")" && pwd)/pg-lib.sh"
toc_only=
if [ "${1:-}" = --toc ]; then
  toc_only=yes
  shift
fi
[ "$#" -ge 1 ] || {
  echo "usage: verify-dump.sh [--toc] FILE [SHA256]" >&2
  exit 2
}
file=$1
if [ ! -s "$file" ]; then
  echo "verify: $file is missing or empty" >&2
  exit 1
fi
if [ "$#" -ge 2 ]; then
  actual=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$actual" != "$2" ]; then
    echo "verify: $file does not match its manifest's sha256" >&2
    exit 1
  fi
fi
pg pg_restore --list <"$file" >/dev/null
if [ -n "$toc_only" ]; then
  echo "verify: $file matches its checksum and its table of contents reads"
  exit 0
fi
pg pg_restore --file=/dev/null <"$file"
echo "verify: $file is readable end to end"
