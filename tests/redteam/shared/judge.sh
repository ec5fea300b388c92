#!/bin/sh
# judge.sh OUTFILE ERRFILE: the secret the plugin/entry wrote to fd 2 before
# lockdown (a 64-hex line) against "LEAKED <hex>" on stdout.
sec=$(grep -Eo '^[0-9a-f]{64}$' "$2" | head -1)
got=$(sed -n 's/.*LEAKED \([0-9a-f]*\).*/\1/p' "$1" | head -1)
if [ -n "$sec" ] && [ "$sec" = "$got" ]; then echo "JUDGE: LEAKED (secret $sec)"; else echo "JUDGE: held (secret ${sec:-?}, attack printed ${got:-nothing})"; fi
