#!/usr/bin/env bash
# cordon-audit end to end (docs/audit.md, "Reading a stream"): a valid
# stream with every event; one invalid line of each kind, each with its
# message and status 1; the summary of a sample stream, word for word;
# follow on a pipe and on a growing file; the CLI's habits.
# usage: cordon_audit_test.sh CORDON_AUDIT SOURCE_DIR
set -uo pipefail
audit=$1 src=$2
here=$src/tests/audit
# shellcheck source=../support/check.sh
. "$src/tests/support/check.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A record of process 7 ("prog") at seq $1: event $2 ($3), args $4 (JSON).
rec() {
  local n
  n=$(grep -o '{"name"' <<<"$4" | wc -l)
  printf '{"timestamp":1764740103000000000,"schema":"cordon.audit/1","seq":%s,"processId":7,"threadId":7,"processName":"prog","eventId":%s,"eventName":"%s","argsNum":%s,"args":%s}\n' \
    "$1" "$3" "$2" "$n" "$4"
}
init() {
  rec 0 cordon_init 1 '[{"name":"version","type":"const char*","value":"0.1.0"},{"name":"platform","type":"const char*","value":"test"},{"name":"trusted_pkey","type":"int","value":1},{"name":"inspect_policy","type":"const char*","value":"neutralize"}]'
}
domain_args() {  # the args of a domain_create, with region_start $1
  printf '[{"name":"domain","type":"int","value":1},{"name":"name","type":"const char*","value":"vault"},{"name":"pkey","type":"int","value":1},{"name":"region_start","type":"void*","value":"%s"},{"name":"region_size","type":"size_t","value":4096}]' "$1"
}
good_domain=$(rec 1 domain_create 3 "$(domain_args 0x7f0000000000)")

# validate on a stream of init and then LINE (as given, newline added):
# status 1 and the message for line 2.
invalid() {
  local what=$1 line=$2 message=$3
  { init; printf '%s\n' "$line"; } > "$tmp/bad.jsonl"
  "$audit" validate "$tmp/bad.jsonl" > "$tmp/out" 2> "$tmp/err"; local rc=$?
  check "$what: status" 1 "$rc"
  check "$what: message" "$tmp/bad.jsonl:2: $message" "$(head -n 1 "$tmp/out")"
  check "$what: nothing on stderr" "" "$(cat "$tmp/err")"
}

# The valid stream.
out=$("$audit" validate "$here/valid_all_events.jsonl"); rc=$?
check "valid stream: status 0" 0 "$rc"
check "valid stream: message" "$here/valid_all_events.jsonl: valid: 21 record(s)" "$out"
events=$(sed 's/.*"eventName":"\([a-z_]*\)".*/\1/' "$here/valid_all_events.jsonl" | sort -u | wc -l)
check "the valid stream has all 11 events" 11 "$events"
out=$("$audit" validate < "$here/valid_all_events.jsonl"); rc=$?
check "validate reads stdin" "0:<stdin>: valid: 21 record(s)" "$rc:$out"
{ init; printf '%s\n' "$good_domain"; } | "$audit" validate - > /dev/null; check "a two-record stream is valid" 0 "$?"

# One invalid line of each kind.
invalid "field order" "${good_domain/\"schema\":\"cordon.audit\/1\",\"seq\":1/\"seq\":1,\"schema\":\"cordon.audit/1\"}" \
  'fields out of order: "seq" where "schema" belongs'
invalid "missing field" "${good_domain/\"threadId\":7,/}" 'field "threadId" missing'
invalid "unknown field" "${good_domain/\"args\":/\"extra\":1,\"args\":}" 'unknown field "extra" where "args" belongs'
invalid "field after args" "${good_domain%\}},\"more\":0}" 'unknown field "more"'
invalid "missing argument" "$(rec 1 domain_create 3 '[{"name":"domain","type":"int","value":1},{"name":"name","type":"const char*","value":"vault"},{"name":"pkey","type":"int","value":1},{"name":"region_start","type":"void*","value":"0x1000"}]')" \
  'domain_create: argument region_size missing (5 expected, 4 given)'
invalid "argsNum disagrees" "${good_domain/\"argsNum\":5/\"argsNum\":4}" 'field argsNum is integer 4, but args has 5 entries'
invalid "arguments out of order" "$(rec 1 domain_create 3 '[{"name":"name","type":"const char*","value":"vault"},{"name":"domain","type":"int","value":1},{"name":"pkey","type":"int","value":1},{"name":"region_start","type":"void*","value":"0x1000"},{"name":"region_size","type":"size_t","value":1}]')" \
  'domain_create: args[0]: name is "name", expected "domain" (arguments out of order)'
invalid "argument members out of order" "${good_domain/\{\"name\":\"pkey\",\"type\":\"int\"/{\"type\":\"int\",\"name\":\"pkey\"}" \
  'domain_create: args[2]: fields out of order: "type" where "name" belongs'
invalid "wrong value type" "${good_domain/\"pkey\",\"type\":\"int\",\"value\":1/\"pkey\",\"type\":\"int\",\"value\":\"1\"}" \
  'domain_create: argument pkey (int) must be a signed 64-bit integer, not string'
invalid "wrong type name" "${good_domain/\"type\":\"size_t\"/\"type\":\"u64\"}" \
  'domain_create: args[4]: argument region_size has type "u64", expected "size_t"'
invalid "fraction for an integer" "${good_domain/\"value\":4096/\"value\":4096.5}" \
  'domain_create: argument region_size (size_t) must be an unsigned 64-bit integer, not number 4096.5'
invalid "negative size_t" "${good_domain/\"value\":4096/\"value\":-1}" \
  'domain_create: argument region_size (size_t) must be an unsigned 64-bit integer, not integer -1'
invalid "uppercase hex" "$(rec 1 domain_create 3 "$(domain_args 0x7F0000000000)")" \
  'domain_create: argument region_start (void*) is "0x7F0000000000", not "0x" and lowercase hex without leading zeros'
invalid "leading zero in hex" "$(rec 1 domain_create 3 "$(domain_args 0x0abc)")" \
  'domain_create: argument region_start (void*) is "0x0abc", not "0x" and lowercase hex without leading zeros'
invalid "hex without 0x" "$(rec 1 domain_create 3 "$(domain_args 7f00)")" \
  'domain_create: argument region_start (void*) is "7f00", not "0x" and lowercase hex without leading zeros'
invalid "hex past 64 bits" "$(rec 1 domain_create 3 "$(domain_args 0x10000000000000000)")" \
  'domain_create: argument region_start (void*) is "0x10000000000000000", not "0x" and lowercase hex without leading zeros'
invalid "pointer as an integer" "$(rec 1 code_release 6 '[{"name":"block","type":"void*","value":4096},{"name":"status","type":"int","value":0}]')" \
  'code_release: argument block (void*) must be a "0x" hex string, not integer 4096'
invalid "value outside the set" "$(rec 1 cordon_lockdown 4 '[{"name":"violation","type":"const char*","value":"warn"},{"name":"status","type":"int","value":0}]')" \
  'cordon_lockdown: argument violation (const char*) is "warn", not one of kill|errno_for_tests'
sha=ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7
publish() {
  rec 1 code_publish 5 "[{\"name\":\"block\",\"type\":\"void*\",\"value\":\"0x1000\"},{\"name\":\"length\",\"type\":\"size_t\",\"value\":16},{\"name\":\"sha256\",\"type\":\"const char*\",\"value\":\"$1\"},{\"name\":\"verdict\",\"type\":\"const char*\",\"value\":\"published\"},{\"name\":\"status\",\"type\":\"int\",\"value\":0}]"
}
invalid "uppercase sha256" "$(publish "${sha^^}")" \
  "code_publish: argument sha256 (const char*) is \"${sha^^}\", not 64 lowercase hex digits"
invalid "short sha256" "$(publish "${sha:1}")" \
  "code_publish: argument sha256 (const char*) is \"${sha:1}\", not 64 lowercase hex digits"
refused() {
  rec 1 syscall_refused 7 "[{\"name\":\"syscall\",\"type\":\"int\",\"value\":101},{\"name\":\"syscall_name\",\"type\":\"const char*\",\"value\":\"ptrace\"},{\"name\":\"syscall_args\",\"type\":\"unsigned long[]\",\"value\":[$1]},{\"name\":\"ip\",\"type\":\"void*\",\"value\":\"0x1\"},{\"name\":\"action\",\"type\":\"const char*\",\"value\":\"killed\"}]"
}
{ init; refused '"0x0","0x1","0x2","0x3","0x4","0x5"'; } | "$audit" validate > /dev/null; check "syscall_refused with 6 args is valid" 0 "$?"
invalid "five syscall args" "$(refused '"0x0","0x1","0x2","0x3","0x4"')" \
  'syscall_refused: argument syscall_args (unsigned long[]) has 5 values, not 6'
invalid "a syscall arg as an integer" "$(refused '"0x0","0x1","0x2","0x3","0x4",5')" \
  'syscall_refused: argument syscall_args (unsigned long[]) value 5 is integer 5, not "0x" and lowercase hex without leading zeros'
invalid "eventId disagrees" "${good_domain/\"eventId\":3/\"eventId\":2}" \
  'field eventId is integer 2, but domain_create is event 3'
invalid "unknown event" "${good_domain/domain_create/domain_destroy}" 'unknown eventName "domain_destroy"'
invalid "another schema" "${good_domain/cordon.audit\/1/cordon.audit\/2}" 'field schema is "cordon.audit/2", not "cordon.audit/1"'
invalid "not an object" '[1,2]' 'a record must be a JSON object, not array'
invalid "seq gap" "${good_domain/\"seq\":1/\"seq\":3}" \
  'seq jumps from 0 to 3: 2 record(s) missing, and no audit_lost reports them'
invalid "audit_lost disagrees with the gap" \
  "$(rec 4 audit_lost 10 '[{"name":"lost","type":"u64","value":2}]')" \
  'seq jumps from 0 to 4: 3 record(s) missing but audit_lost reports 2'
invalid "audit_lost without a gap" "$(rec 1 audit_lost 10 '[{"name":"lost","type":"u64","value":2}]')" \
  'audit_lost reports 2 lost record(s) but no seq number was skipped'
{ init; rec 3 audit_lost 10 '[{"name":"lost","type":"u64","value":2}]'; } | "$audit" validate > /dev/null
check "a gap that audit_lost reports is valid" 0 "$?"
invalid "seq repeats" "${good_domain/\"seq\":1/\"seq\":0}" 'seq 0 repeats or goes back (process 7 is at seq 1)'
invalid "processName changes" "${good_domain/\"prog\"/\"other\"}" \
  'processName "other" differs from the process'"'"'s "prog" (its name at cordon_init)'
invalid "cordon_init not at seq 0" "$(init | sed 's/"seq":0/"seq":1/')" \
  'cordon_init at seq 1: a process'"'"'s cordon_init is its seq 0'
invalid "first record not cordon_init" "${good_domain/\"processId\":7/\"processId\":8}" \
  'process 8 starts with domain_create at seq 1, not with cordon_init at seq 0'
invalid "non-ASCII byte" "${good_domain/vault/vaulté}" 'not JSON: column 267: non-ASCII byte 0xc3 (the stream escapes bytes >= 0x80)'
invalid "escape above a byte" "${good_domain/vault/vault\\u0100}" \
  'domain_create: argument name (const char*) has a \u escape above \u00ff (the stream escapes single bytes)'
{ init; printf '%s\n' "${good_domain/vault/v\\u00e9\\u0001\\\"}"; } | "$audit" validate > /dev/null
check "byte escapes are valid" 0 "$?"
invalid "bad escape" "${good_domain/vault/va\\xlt}" 'not JSON: column 264: bad escape '"'"'\x'"'"''
invalid "raw control byte" "${good_domain/vault/va$'\t'lt}" 'not JSON: column 264: control byte 0x09 inside a string (must be escaped)'
invalid "duplicate key" "${good_domain/\"args\":/\"seq\":1,\"args\":}" 'not JSON: column 168: duplicate key "seq"'
invalid "trailing garbage" "$good_domain x" 'not JSON: column 427: trailing characters after the JSON value'
invalid "two records on a line" "$good_domain$good_domain" 'not JSON: column 426: trailing characters after the JSON value'
invalid "integer past 64 bits" "${good_domain/\"value\":4096/\"value\":18446744073709551616}" \
  'not JSON: column 419: integer 18446744073709551616 out of 64-bit range'
invalid "negative past 64 bits" "${good_domain/\"pkey\",\"type\":\"int\",\"value\":1/\"pkey\",\"type\":\"int\",\"value\":-9223372036854775809}" \
  'not JSON: column 306: integer -9223372036854775809 out of 64-bit range'
invalid "unterminated object" "${good_domain%\}}" 'not JSON: column 425: unexpected end of input inside an object'
invalid "empty line" "" 'empty line'
# u64 and int at their limits are valid.
{ init; rec 1 gate_calls 9 '[{"name":"domain","type":"int","value":-9223372036854775808},{"name":"entry","type":"int","value":9223372036854775807},{"name":"entry_name","type":"const char*","value":""},{"name":"count","type":"u64","value":18446744073709551615}]'; } |
  "$audit" validate > /dev/null
check "integers at the 64-bit limits are valid" 0 "$?"

# A truncated final line (the writer killed mid-record), and every error
# counted.
{ init; printf '%s' "${good_domain:0:100}"; } > "$tmp/truncated.jsonl"
"$audit" validate "$tmp/truncated.jsonl" > "$tmp/out"; rc=$?
check "truncated final line: status" 1 "$rc"
check "truncated final line: message" \
  "$tmp/truncated.jsonl:2: the last line has no newline: a truncated record (the writer stopped in the middle of it)
$tmp/truncated.jsonl: INVALID: 1 error(s) in 2 line(s)" "$(cat "$tmp/out")"
{ init; printf '%s' "$good_domain"; } | "$audit" validate > "$tmp/out"; rc=$?
check "a complete record without its newline is truncated too" \
  "1:<stdin>:2: the last line has no newline: a truncated record (the writer stopped in the middle of it)" \
  "$rc:$(head -n 1 "$tmp/out")"
{ init; echo '{'; echo "${good_domain/\"seq\":1/\"seq\":2}"; echo "${good_domain/\"seq\":1/\"seq\":3}"; } | "$audit" validate > "$tmp/out"
check "every error is reported, with its line; after a gap the stream goes on from the new seq" \
  "<stdin>:2: not JSON: column 2: a member name (a string) expected
<stdin>:3: seq jumps from 0 to 2: 1 record(s) missing, and no audit_lost reports them
<stdin>: INVALID: 2 error(s) in 4 line(s)" "$(cat "$tmp/out")"
head -c 2000000 /dev/zero | tr '\0' ' ' > "$tmp/long"; echo >> "$tmp/long"
"$audit" validate "$tmp/long" > "$tmp/out"; check "an over-long line: status" 1 "$?"
check "an over-long line: message" "$tmp/long:1: line longer than 1048576 bytes" "$(head -n 1 "$tmp/out")"

# The summary of the sample stream, word for word.
(cd "$here" && "$audit" summary valid_all_events.jsonl) > "$tmp/summary.txt"; rc=$?
check "summary with violations: status 1" 1 "$rc"
diff -u "$here/summary_expected.txt" "$tmp/summary.txt"; check "summary text" 0 "$?"
{ init; rec 1 cordon_lockdown 4 '[{"name":"violation","type":"const char*","value":"kill"},{"name":"status","type":"int","value":0}]'
  rec 2 gate_calls 9 '[{"name":"domain","type":"int","value":0},{"name":"entry","type":"int","value":3},{"name":"entry_name","type":"const char*","value":"sign"},{"name":"count","type":"u64","value":5}]'; } |
  "$audit" summary > "$tmp/clean.txt"; rc=$?
check "summary of a clean stream: status 0" 0 "$rc"
grep -q '^  lockdown: locked down; a forbidden system call will kill the process (line 2)$' "$tmp/clean.txt"; check "clean summary: lockdown" 0 "$?"
grep -q '^    domain 0, entry 3 "sign": 5$' "$tmp/clean.txt"; check "clean summary: gate calls" 0 "$?"
grep -q '^Violations: 0$' "$tmp/clean.txt"; check "clean summary: no violations" 0 "$?"
"$audit" summary "$tmp/truncated.jsonl" > "$tmp/trunc.txt"; rc=$?
check "summary of a truncated stream: status 1" 1 "$rc"
grep -q '^Stream end: TRUNCATED' "$tmp/trunc.txt"; check "summary says the stream is truncated" 0 "$?"
grep -q '^  line 2: the last line has no newline' "$tmp/trunc.txt"; check "summary lists the invalid line" 0 "$?"

# follow on a pipe: one line per record, to the pipe's end.
cat "$here/valid_all_events.jsonl" | "$audit" follow - > "$tmp/follow.txt"; rc=$?
check "follow on a pipe: status 0 at its end" 0 "$rc"
check "follow: one line per record" 21 "$(wc -l < "$tmp/follow.txt")"
check "follow: the first line" '2025-12-03T05:35:03.000000000Z secret_vault[4242/4242] #0 cordon_init: Cordon "0.1.0" on "AMD EPYC (Zen 3), Linux 6.18, PKU, FSGSBASE", trusted key 1, inspection policy neutralize' \
  "$(head -n 1 "$tmp/follow.txt")"
check "follow: a violation, marked" '2025-12-03T05:35:04.000000004Z worker[5001/5002] #4 !! pkey_fault: protection-key FAULT at 0x7f0000000010 (key 2, domain 2 "jit"), si_code 4 (SEGV_PKUERR), from 0x401234: the process was killed' \
  "$(grep -F "worker[5001/5002] #4" "$tmp/follow.txt")"
"$audit" follow --json - < "$here/valid_all_events.jsonl" > "$tmp/pass.jsonl"; rc=$?
cmp -s "$here/valid_all_events.jsonl" "$tmp/pass.jsonl"; check "follow --json passes valid records unchanged" "0:0" "$rc:$?"
{ init; echo '{"oops":1}'; printf '%s\n' "$good_domain"; } | "$audit" follow --json - > "$tmp/pass.jsonl" 2> "$tmp/err"; rc=$?
check "follow --json: an invalid record makes status 1" 1 "$rc"
check "follow --json: only the valid records pass" 2 "$(wc -l < "$tmp/pass.jsonl")"
check "follow --json: the error on stderr" 'cordon-audit: <stdin>:2: unknown field "oops" where "timestamp" belongs' "$(cat "$tmp/err")"

# follow on a growing file (a writer appending record by record), until
# the writer has exited (--pid); and without --pid, until stopped.
: > "$tmp/grow.jsonl"
( init; sleep 0.3; printf '%s' "${good_domain:0:50}"; sleep 0.3; printf '%s\n' "${good_domain:50}"; sleep 0.3
  rec 2 code_release 6 '[{"name":"block","type":"void*","value":"0x1000"},{"name":"status","type":"int","value":0}]' ) >> "$tmp/grow.jsonl" &
writer=$!
timeout 20 "$audit" follow --pid "$writer" "$tmp/grow.jsonl" > "$tmp/grow.txt"; rc=$?
wait "$writer"
check "follow --pid: ends when the writer has exited" 0 "$rc"
check "follow a growing file: every record, a line written in two parts once" \
  "#0 cordon_init|#1 domain_create|#2 code_release" "$(sed 's/^[^ ]* [^ ]* \(#[0-9]* [a-z_]*\).*/\1/' "$tmp/grow.txt" | paste -sd'|')"
# A writer that has exited but that its parent has not reaped (a zombie)
# writes no more: follow ends too.
sh -c 'sleep 0.1 & exec sleep 1' & parent=$!
sleep 0.5
zombie=$(pgrep -P "$parent" -x sleep | head -n 1)
timeout 5 "$audit" follow --pid "${zombie:-1}" "$tmp/grow.jsonl" > /dev/null 2>&1; rc=$?
check "follow --pid: a zombie writer counts as exited" "Z:0" "$(ps -o stat= -p "${zombie:-1}" | cut -c1):$rc"
wait "$parent"
init > "$tmp/grow2.jsonl"
"$audit" follow "$tmp/grow2.jsonl" > "$tmp/grow2.txt" & follower=$!
printf '%s\n' "$good_domain" >> "$tmp/grow2.jsonl"
for _ in $(seq 100); do [ "$(wc -l < "$tmp/grow2.txt")" = 2 ] && break; sleep 0.1; done
check "follow without --pid keeps reading the file" 2 "$(wc -l < "$tmp/grow2.txt")"
kill -0 "$follower" 2>/dev/null; check "and is still following at the file's end" 0 "$?"
kill "$follower"; wait "$follower" 2>/dev/null

usage() {  # ARGS... : status 2, the reason first on stderr, nothing on stdout
  local want=$1; shift
  "$audit" "$@" > "$tmp/out" 2> "$tmp/err"; local rc=$?
  check "usage error ($*): status" 2 "$rc"
  check "usage error ($*): reason" "cordon-audit: $want" "$(head -n 1 "$tmp/err")"
  check "usage error ($*): stdout empty" "" "$(cat "$tmp/out")"
}

# Keyed streams (docs/audit.md, "Authenticated records"): lines signed
# here by Python's own HMAC (an independent implementation), with random
# keys; the tool must accept exactly the records the key signed.
randhex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
sign() {  # KEYHEX: each record on stdin with its mac (the HMAC of the line before ,"mac":)
  python3 -c '
import hashlib, hmac, sys
key = bytes.fromhex(sys.argv[1])
for line in sys.stdin.read().splitlines():
    body = line[:-1]
    print(body + ",\"mac\":\"" + hmac.new(key, body.encode(), hashlib.sha256).hexdigest() + "\"}")' "$1"
}
key=$(randhex 32) other_key=$(randhex 32)
printf '%s\n' "$key" > "$tmp/key"
sign "$key" < "$here/valid_all_events.jsonl" > "$tmp/signed.jsonl"
n=$(wc -l < "$tmp/signed.jsonl")
authenticated="every record authenticated by its mac (HMAC-SHA256 with the key)"
out=$("$audit" validate --key-file "$tmp/key" "$tmp/signed.jsonl"); rc=$?
check "keyed stream: valid with its key" "0:$tmp/signed.jsonl: valid: $n record(s); $authenticated" "$rc:$out"
out=$(AUDIT_TEST_KEY=$key "$audit" validate --key-env AUDIT_TEST_KEY < "$tmp/signed.jsonl"); rc=$?
check "keyed stream: --key-env" "0:<stdin>: valid: $n record(s); $authenticated" "$rc:$out"
printf '%s' "${key^^}" > "$tmp/key_upper"  # no newline, upper case
"$audit" validate --key-file "$tmp/key_upper" "$tmp/signed.jsonl" > /dev/null; check "a key in upper case, no newline" 0 "$?"
"$audit" validate "$tmp/signed.jsonl" > "$tmp/out" 2> "$tmp/err"; rc=$?
check "keyed stream without the key: form only" \
  "0:$tmp/signed.jsonl: valid: $n record(s); $n of $n record(s) carry a mac, NOT authenticated (no --key-file or --key-env given)" \
  "$rc:$(cat "$tmp/out")"
check "keyed stream without the key: said on stderr" \
  "cordon-audit: $tmp/signed.jsonl:1: the records carry a mac, but no key was given (--key-file, --key-env): checked for form only, not authenticated" \
  "$(cat "$tmp/err")"
"$audit" validate --key-file "$tmp/key" "$here/valid_all_events.jsonl" > "$tmp/out"; rc=$?
check "an unkeyed stream with a key: every record refused" \
  "1:$here/valid_all_events.jsonl:1: forged or altered record: it has no mac, and with a key every record must carry one" \
  "$rc:$(head -n 1 "$tmp/out")"
# A line put into the signed stream after its line $2 (a changed copy of
# that genuine record, or one made up): status 1, that line and nothing
# else reported as forged (the seq rules never see it), the others
# authenticated.
forged() {
  local what=$1 at=$2 line=$3 message=$4
  LINE=$line awk -v at="$at" '{ print } NR == at { print ENVIRON["LINE"] }' "$tmp/signed.jsonl" > "$tmp/forged.jsonl"
  "$audit" validate --key-file "$tmp/key" "$tmp/forged.jsonl" > "$tmp/out" 2> "$tmp/err"; local rc=$?
  check "$what: status" 1 "$rc"
  check "$what: the line and why" "$tmp/forged.jsonl:$((at + 1)): forged or altered record: $message
$tmp/forged.jsonl: INVALID: 1 error(s) in $((n + 1)) line(s); 1 forged or altered record(s) (no valid mac), $n authenticated" \
    "$(cat "$tmp/out")"
  "$audit" validate "$tmp/forged.jsonl" > /dev/null 2>&1; check "$what: without the key, no valid stream either (a repeated seq)" 1 "$?"
}
# A random line that is not a cordon_init (a copy of one would start its
# process's stream over, which is valid without the key).
lines=$(grep -vn '"eventName":"cordon_init"' "$tmp/signed.jsonl" | cut -d: -f1 | tr '\n' ' ')
read -ra lines <<< "$lines"
at=${lines[$(( $(randhex 2 | sed 's/^/0x/' | xargs printf '%d') % ${#lines[@]} ))]}
genuine=$(sed -n "${at}p" "$tmp/signed.jsonl")
digit=$((15 + $(randhex 1 | sed 's/^/0x/' | xargs printf '%d') % 15))  # a timestamp digit after the first
old=${genuine:digit:1} new=$(( (old + 1 + $(randhex 1 | sed 's/^/0x/' | xargs printf '%d') % 9) % 10 ))
wrong_mac="its mac is not the key's HMAC-SHA256 of the line before ,\"mac\":"
forged "one timestamp digit changed" "$at" "${genuine:0:digit}$new${genuine:digit+1}" "$wrong_mac"
mac=${genuine: -66:64}
flipped=$(printf '%x' $(( (16#${mac:0:1} + 1) % 16 )))${mac:1}
forged "one mac digit changed" "$at" "${genuine/$mac/$flipped}" "$wrong_mac"
forged "a mac from another key" "$at" "$(sed -n "${at}p" "$here/valid_all_events.jsonl" | sign "$other_key")" "$wrong_mac"
forged "a random mac" "$at" "$(sed -n "${at}p" "$here/valid_all_events.jsonl" | sed "s/}\$/,\"mac\":\"$(randhex 32)\"}/")" "$wrong_mac"
forged "no mac" "$at" "$(sed -n "${at}p" "$here/valid_all_events.jsonl")" "it has no mac, and with a key every record must carry one"
forged "the mac not in the writer's form" "$at" "${genuine/\"mac\":/\"mac\": }" \
  "its mac is not at the line's end in the writer's form ,\"mac\":\"...\"}"
# A genuine record written again: its mac is right, the seq rules catch it.
{ head -n "$at" "$tmp/signed.jsonl"; sed -n "${at}p" "$tmp/signed.jsonl"; tail -n +"$((at + 1))" "$tmp/signed.jsonl"; } > "$tmp/replay.jsonl"
seq_at=$(sed -n "${at}p" "$tmp/signed.jsonl" | sed 's/.*"seq":\([0-9]*\).*/\1/')
pid_at=$(sed -n "${at}p" "$tmp/signed.jsonl" | sed 's/.*"processId":\([0-9]*\).*/\1/')
"$audit" validate --key-file "$tmp/key" "$tmp/replay.jsonl" > "$tmp/out"; rc=$?
check "a replayed record: status" 1 "$rc"
check "a replayed record: the seq rule" "$tmp/replay.jsonl:$((at + 1)): seq $seq_at repeats or goes back (process $pid_at is at seq $((seq_at + 1)))" \
  "$(head -n 1 "$tmp/out")"
invalid "mac not hex" "${good_domain%\}},\"mac\":\"ABC\"}" 'field mac must be 64 lowercase hex digits, not "ABC"'
invalid "a field after the mac" "${good_domain%\}},\"mac\":\"$(randhex 32)\",\"x\":1}" 'unknown field "x"'
"$audit" summary --key-file "$tmp/key" "$tmp/signed.jsonl" > "$tmp/out"; rc=$?
check "summary with the key: status (violations)" 1 "$rc"
check "summary with the key: authentication" "Authentication: $authenticated" "$(grep '^Authentication:' "$tmp/out")"
"$audit" follow --json --key-file "$tmp/key" - < "$tmp/forged.jsonl" > "$tmp/out" 2> "$tmp/err"; rc=$?
check "follow --json with the key: status" 1 "$rc"
check "follow --json with the key: the forged line not passed on" "$n" "$(wc -l < "$tmp/out")"
# The key's own errors: 3 for a file that cannot be read, 2 for the rest.
"$audit" validate --key-file /nonexistent/key "$tmp/signed.jsonl" > /dev/null 2> "$tmp/err"; rc=$?
check "a missing key file: status 3" \
  "3:cordon-audit: /nonexistent/key: cannot open the key file: No such file or directory" "$rc:$(cat "$tmp/err")"
printf '%s\n' "${key:1}" > "$tmp/short"
usage "$tmp/short: the key has 63 characters, not the 64 hex digits of a 32-byte key" validate --key-file "$tmp/short" "$tmp/signed.jsonl"
printf '%s\n\n' "$key" > "$tmp/two_lines"
usage "$tmp/two_lines: the key has 65 characters, not the 64 hex digits of a 32-byte key" validate --key-file "$tmp/two_lines" "$tmp/signed.jsonl"
printf 'g%s\n' "${key:1}" > "$tmp/nothex"
usage "$tmp/nothex: the key's character 1 is not a hex digit" summary --key-file "$tmp/nothex" "$tmp/signed.jsonl"
grep -c "$key" "$tmp/err" > /dev/null; check "a bad key is not echoed" 1 "$?"
usage "--key-env CORDON_TEST_UNSET_$$: the variable is not set" validate --key-env "CORDON_TEST_UNSET_$$" "$tmp/signed.jsonl"
usage "one key only (--key-file or --key-env)" validate --key-file "$tmp/key" --key-env HOME "$tmp/signed.jsonl"
usage "--key-file needs a file" follow f --key-file
usage "unknown option --key-file for schema" schema --key-file "$tmp/key"

# schema: the installed document is what the tables say.
"$audit" schema > "$tmp/schema.json"; rc=$?
cmp -s "$src/docs/audit-schema-v1.json" "$tmp/schema.json"; check "schema prints docs/audit-schema-v1.json" "0:0" "$rc:$?"

# The CLI's habits.
out=$("$audit" --help); rc=$?
check "--help on stdout, status 0" "0:usage: cordon-audit summary [KEY] [FILE|-]" "$rc:${out%%$'\n'*}"
out=$("$audit" validate --help); check "validate --help" "0:usage: cordon-audit summary [KEY] [FILE|-]" "$?:${out%%$'\n'*}"
out=$("$audit" --version); rc=$?
[[ "$out" =~ ^cordon-audit\ [0-9]+\.[0-9]+\.[0-9]+\ \(schema\ cordon\.audit/1\)$ ]]; check "--version" "0:0" "$rc:$?"
usage "no command given"
usage "unknown option --frobnicate" --frobnicate
usage "unknown command frob" frob
usage "unknown option --json for validate" validate --json x
usage "unknown option -x for summary" summary -x
usage "follow needs FILE, or - for standard input" follow
usage "--pid wants a process id, not '12x'" follow --pid 12x f
usage "--pid needs a process id" follow f --pid
usage "validate reads one stream, not 2" validate a b
usage "schema takes no file" schema x
"$audit" validate /nonexistent/file > "$tmp/out" 2> "$tmp/err"; rc=$?
check "missing file: status 3" 3 "$rc"
check "missing file: message" "cordon-audit: /nonexistent/file: cannot open: No such file or directory" "$(cat "$tmp/err")"
"$audit" summary "$tmp" > /dev/null 2> "$tmp/err"; rc=$?
check "a directory: status 3" "3:cordon-audit: $tmp: cannot read: a directory" "$rc:$(cat "$tmp/err")"
"$audit" follow /nonexistent/file 2>/dev/null; check "follow a missing file: status 3" 3 "$?"

finish
