#!/bin/sh
# Runs die_stack_ret_hijack with g_recording's offset from cordon_gate_die.
p=${1:?program}; shift
rec=$(nm "$p" | awk '/g_recordingE$/ {print $1}')
die=$(nm "$p" | awk '$3 == "cordon_gate_die" {print $1}')
exec "$p" "${1:-200}" "$(printf '%d' $((0x$rec - 0x$die)))"
