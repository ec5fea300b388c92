# Shared by the shell tests: check NAME EXPECTED ACTUAL counts a pass or
# prints the failure; finish prints the closing line and sets the status.
pass=0
fail=0
check() {
  if [ "$2" = "$3" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $1: expected [$2], got [$3]"; fi
}
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" = 0 ]
}
