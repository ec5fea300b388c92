#!/bin/sh
# Runs audit_silent_fatal with g_recording's offset from cordon_gate_die
# ("scan" as $2: the key scan and an unsilenced death, for comparison).
p=${1:?program}
rec=$(nm "$p" | awk '/g_recordingE$/ {print $1}')
die=$(nm "$p" | awk '$3 == "cordon_gate_die" {print $1}')
exec "$p" "${2:-$(printf '%d' $((0x$rec - 0x$die)))}"
