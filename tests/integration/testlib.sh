# Shared helpers for the command-line tests: expectations that count
# failures, and finish() that reports them (exit status 1 if any failed).
: "${BIN:?set by tests/run.sh}" "${TOP:?set by tests/run.sh}"
# The tests' python3 is Debian's, which `make deps` installs: the first one
# on PATH may be a pyenv shim, which starts about 16 processes a call (0.4 s
# on the test machine, against 0.035 s; 77 calls in one test).
if [ -x /usr/bin/python3 ]; then python3() { /usr/bin/python3 "$@"; }; fi
FAILS=0
expect_eq() { # name want got
    if [ "$2" != "$3" ]; then
        echo "FAIL: $1: want [$2] got [$3]"; FAILS=$((FAILS + 1))
    fi
}
expect_grep() { # name pattern file
    if ! grep -qE -- "$2" "$3"; then
        echo "FAIL: $1: no /$2/ in $3:"; head -20 "$3" | sed 's/^/    /'
        FAILS=$((FAILS + 1))
    fi
}
finish() {
    [ "$FAILS" -eq 0 ] && echo "ok" && exit 0
    echo "$FAILS failure(s)"; exit 1
}
