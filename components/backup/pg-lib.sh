#!/bin/sh
# Shared by the backup scripts (sourced, not run).
#
# pg TOOL ARGS...   runs a PostgreSQL client tool (psql, pg_dump, pg_restore, ...) here, or, when
#                   PG_EXEC holds a command prefix, through it: site-backup.sh sets it to a
#                   `docker exec -i ... CONTAINER` of the database's own container (or of a short-lived
#                   one of the shared cluster's image), so the tools match the server while the files
#                   stay on the host. Files travel on standard input and output, never by path.
pg() {
  # shellcheck disable=SC2086 # PG_EXEC is a list of plain words, split on purpose
  ${PG_EXEC:-} "$@"
}

# psql_set NAME FILE: prints a psql `\set` line that gives variable NAME the file's text (on one line),
# quoted for psql: backslashes and single quotes escaped. The script then uses it as :'NAME'.
psql_set() {
  printf '\\set %s '"'"'%s'"'"'\n' "$1" "$(tr '\n\r' '  ' <"$2" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g")"
}

# json_string TEXT: TEXT as a JSON string: backslash and quote escaped, every control character
# dropped (newlines and tabs become spaces). For the job's small records (status, drill, offsite).
json_string() { printf '"%s"' "$(printf '%s' "$1" | tr '\n\t' '  ' | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
