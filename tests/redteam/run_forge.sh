#!/bin/sh
# Runs sigsys_handler_forge with the offset of g_handlers from main, from nm.
cd "$(dirname "$0")/../.." || exit 1
B=build/redteam/sigsys_handler_forge
G=$(nm $B | awk '/g_handlersE$/{print $1}'); M=$(nm $B | awk '$3=="main"{print $1}')
OFF=$(printf '%x' $((0x$G - 0x$M)))
tools/cordon-vm --kernel ${1:-6.12} --timeout 120 -- $B $OFF; echo "exit status $?"
