#!/usr/bin/env bash
# openssl_handshakes.sh: full TLS handshakes per second (`openssl s_time
# -new`, every connection a new session, so one server signature each)
# against an unmodified `openssl s_server`, with the key held by the cordon
# provider and with the default provider reading the key file
# (bench/README.md). Natively only: it needs PKU on this machine.
#
#   bench/openssl_handshakes.sh BUILD_DIR [SECONDS [KEY_TYPES]]
#       SECONDS per measurement (default 10); KEY_TYPES a list of
#       ed25519, ec, rsa (default all three); TLS 1.3 and TLS 1.2 each
#
# Prints one line per measurement: key, protocol, provider, handshakes/s.
# Exit status 0, 1 when a server or a measurement failed, 2 usage.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
build=$(cd "$1" && pwd)
seconds=${2:-10}
types=${3:-ed25519 ec rsa}
libcordon=$build/runtime/libcordon.so
cnf=$build/openssl-provider/cordon.cnf
for f in "$libcordon" "$cnf"; do
  [ -e "$f" ] || { echo "openssl_handshakes: $f is missing (build cordon_shared and cordon_provider)" >&2; exit 2; }
done
tmp=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
mkfifo "$tmp/stdin"
exec 3<>"$tmp/stdin"

# Starts s_server on a free port; sets $port and $server.
start_server() { # KEY_ARG ENV...
  local key_arg=$1
  shift
  # Its stdin: a FIFO held open here and never written (s_server stops at
  # the end of its input).
  env "$@" openssl s_server -accept 127.0.0.1:0 -cert "$tmp/cert.pem" -key "$key_arg" \
    -quiet <&3 >/dev/null 2>"$tmp/err" &
  server=$!
  # -quiet hides the ACCEPT line: the port is the server's listening socket's.
  for _ in $(seq 200); do
    port=$(ss -Hltnp 2>/dev/null | awk -v pid="pid=$server," 'index($0, pid) {n = split($4, a, ":"); print a[n]; exit}')
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "openssl_handshakes: the server did not listen: $(cat "$tmp/err")" >&2
  return 1
}

status=0
for type in $types; do
  case $type in
    ed25519) openssl genpkey -algorithm ed25519 -out "$tmp/key.pem" ;;
    ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/key.pem" ;;
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/key.pem" ;;
    *) echo "openssl_handshakes: unknown key type $type" >&2; exit 2 ;;
  esac
  openssl req -x509 -key "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=localhost -days 1 2>/dev/null
  for provider in default cordon; do
    if [ $provider = cordon ]; then
      start_server "cordon:$tmp/key.pem" OPENSSL_CONF="$cnf" LD_PRELOAD="$libcordon" LD_BIND_NOW=1 || { status=1; continue; }
    else
      start_server "$tmp/key.pem" OPENSSL_CONF=/dev/null || { status=1; continue; }
    fi
    for proto in -tls1_3 -tls1_2; do
      line=$(openssl s_time -connect "127.0.0.1:$port" -new -time "$seconds" "$proto" 2>&1 |
        grep -m1 'real seconds' || true)
      # "N connections in T real seconds, B bytes read per connection"
      rate=$(awk '{printf "%.0f", $1 / $4}' <<<"$line" 2>/dev/null || true)
      if [ -z "$line" ] || [ -z "$rate" ]; then
        echo "openssl_handshakes: s_time failed ($type $proto $provider): $(cat "$tmp/err")" >&2
        status=1
        continue
      fi
      printf '%-8s %-8s %-8s %8s handshakes/s   (%s)\n' "$type" "${proto#-}" "$provider" "$rate" "$line"
    done
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
  done
done
exit $status
