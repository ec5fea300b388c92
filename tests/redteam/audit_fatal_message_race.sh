#!/bin/sh
# Runs audit_fatal_message_race with the offset of the runtime's fatal
# message buffer from the program's g_anchor, read from its symbol table.
# Usage: audit_fatal_message_race.sh [cordon-pku-run options, e.g. --native]
cd "$(dirname "$0")/../.." || exit 1
p=build/redteam/audit_fatal_message_race
m=$(nm "$p" | awk '/g_messages/ {print $1}')
a=$(nm "$p" | awk '/ g_anchor$/ {print $1}')
off=$(( 0x$m - 0x$a ))
exec tools/cordon-pku-run "$@" -- "$p" "$off"
