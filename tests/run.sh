#!/usr/bin/env bash
# Runs every unit test binary and integration script; prints one summary line.
# Integration scripts get BIN (the build dir) and start what they need.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BIN="$PWD/$BUILD" TOP="$PWD"
pass=0; fail=0; failed=()
run() { # name cmd...
    local name=$1; shift
    local log; log=$(mktemp)
    local t0=$SECONDS
    if timeout 600 "$@" >"$log" 2>&1; then
        pass=$((pass + 1)); printf 'PASS %-40s %3ds\n' "$name" $((SECONDS - t0))
    else
        fail=$((fail + 1)); failed+=("$name")
        printf 'FAIL %-40s %3ds\n' "$name" $((SECONDS - t0)); tail -40 "$log" | sed 's/^/    /'
    fi
    rm -f "$log"
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run "unit/$(basename "$t")" "$t"
done
for t in tests/integration/test_*.sh; do
    [ -f "$t" ] || continue
    run "integration/$(basename "$t" .sh)" bash "$t"
done
echo "summary: $pass passed, $fail failed${failed[*]:+ (${failed[*]})}"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
