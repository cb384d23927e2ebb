#!/bin/sh
# Proves a custom-format dump readable from its first byte to its last: the table of contents, then
# every data block decompressed (pg_restore to /dev/null). `pg_restore --list` alone reads only the
# table of contents and passes a truncated file.
#
#   verify-dump.sh FILE [SHA256]     with SHA256, the file must also match the manifest's checksum
#
# pg_restore reads the file on its standard input, so it may run elsewhere (PG_EXEC, see pg-lib.sh).
set -eu
# shellcheck source=pg-lib.sh
. "$(cd "$(dirname "$0")" && pwd)/pg-lib.sh"
[ "$#" -ge 1 ] || {
  echo "usage: verify-dump.sh FILE [SHA256]" >&2
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
pg pg_restore --file=/dev/null <"$file"
echo "verify: $file is readable end to end"
