#!/usr/bin/env bash
# modfilterd -t and start-up errors: "file:line: reason", non-zero exit.
# -t also resolves server.listen and checks the directories of the files
# the start creates (port_file, socket), without binding or writing.
source "$(dirname "$0")/lib.sh"
train_model
D="$BIN/modfilterd"
ok() { "$D" -t -c "$CONF" --set model.path="$TMP/m.mfm" --set spool.path="$TMP/spool" "$@" >"$TMP/out" 2>&1; echo $?; }
expect_eq "shipped config" 0 "$(ok)"
expect_grep "-t says OK" 'OK' "$TMP/out"
expect_eq "missing model" 1 "$(ok --set model.path="$TMP/none.mfm")"
expect_grep "missing model message" "^--set: model\.path: $TMP/none\.mfm: No such file or directory$" "$TMP/out"
head -c 100 "$TMP/m.mfm" > "$TMP/trunc.mfm"
expect_eq "truncated model" 1 "$(ok --set model.path="$TMP/trunc.mfm")"
expect_grep "truncated model message" "^--set: model\.path: $TMP/trunc\.mfm: " "$TMP/out"
printf '[model]\n\npath = %s/none.mfm\n' "$TMP" > "$TMP/model.conf"
"$D" -t -c "$TMP/model.conf" --set spool.path= >"$TMP/out" 2>&1
expect_eq "missing model from a file" 1 "$?"
expect_grep "missing model from a file message" "^$TMP/model\.conf:3: model\.path: $TMP/none\.mfm: No such file" "$TMP/out"
expect_eq "bad --set value" 1 "$(ok --set limits.max_body=12)"
expect_grep "--set message" '^--set: limits.max_body: 12 is out of range' "$TMP/out"
expect_eq "unknown --set key" 1 "$(ok --set server.nope=1)"
expect_eq "malformed --set" 1 "$(ok --set nodot)"
expect_eq "threshold override" 0 "$(ok --set thresholds.abuse_review=0.3 --set thresholds.abuse_reject=0.8)"
expect_eq "override review > reject" 1 "$(ok --set thresholds.abuse_review=0.9 --set thresholds.abuse_reject=0.8)"
# a label the model lacks: a typo would go unused (or, in akismet.labels,
# teach nothing)
expect_eq "threshold of an unknown label" 1 "$(ok --set thresholds.abuze_review=0.3)"
expect_grep "unknown label message" '^--set: thresholds.abuze_review: unknown label "abuze" \(the model.s: ' "$TMP/out"
AK="--set akismet.keys=blog.example:akismetkey123"
expect_eq "akismet label unknown" 1 "$(ok $AK --set akismet.labels='spam, spma')"
expect_grep "akismet label message" '^--set: akismet.labels: unknown label "spma"' "$TMP/out"
expect_eq "akismet labels of the model" 0 "$(ok $AK --set akismet.labels=abuse,spam)"
expect_eq "akismet labels unused without keys" 0 "$(ok --set akismet.labels=spma)"
expect_eq "akismet labels unused without training" 0 "$(ok $AK --set akismet.train=no --set akismet.labels=spma)"
expect_eq "bad redis url" 1 "$(ok --set redis.url=http://x)"
expect_grep "short url quoted whole" '\(got http://x\)$' "$TMP/out"
expect_eq "no listener" 1 "$(ok --set server.listen=)"
# what the start would stop on, known without binding or writing anything
expect_eq "unresolvable listen" 1 "$(ok --set server.listen=999.1.1.1:80)"
expect_grep "unresolvable listen message" '^--set: server.listen: 999\.1\.1\.1:80: ' "$TMP/out"
expect_eq "port_file dir missing" 1 "$(ok --set server.port_file="$TMP/nodir/p")"
expect_grep "port_file dir message" "^--set: server.port_file: $TMP/nodir/p: cannot be created in $TMP/nodir: No such file" "$TMP/out"
expect_eq "port_file a directory" 1 "$(ok --set server.port_file="$TMP")"
expect_eq "socket dir missing" 1 "$(ok --set server.socket="$TMP/nodir/s")"
expect_grep "socket dir message" "^--set: server.socket: $TMP/nodir/s: cannot be created in $TMP/nodir" "$TMP/out"
expect_eq "socket path a file" 1 "$(ok --set server.socket="$TMP/m.mfm")"
expect_grep "socket path message" "^--set: server.socket: $TMP/m.mfm: exists and is not a socket" "$TMP/out"
expect_eq "good port_file and socket" 0 "$(ok --set server.port_file="$TMP/p" --set server.socket="$TMP/s")"
[ -e "$TMP/p" ] || [ -e "$TMP/s" ] && { echo "FAIL: -t created a file"; FAILS=$((FAILS + 1)); }

conf_err() { # name file-content expected-line-regex
    printf "$2" > "$TMP/c.conf"
    "$D" -t -c "$TMP/c.conf" --set model.path="$TMP/m.mfm" >"$TMP/out" 2>&1
    expect_eq "$1 exit" 1 "$?"
    expect_grep "$1 message" "^$TMP/c.conf:$3" "$TMP/out"
}
conf_err "unknown key" '[server]\nlisten = 127.0.0.1:0\nbogus = 1\n' '3: server.bogus: unknown key'
conf_err "unknown section" '\n[nope]\nx = 1\n' '3: unknown section \[nope\]'
conf_err "not a number" '[limits]\n; comment\nmax_body = lots\n' '3: limits.max_body: "lots" is not'
conf_err "out of range" '[thresholds]\nreview = 1.5\n' '2: thresholds.review: 1.5 is out of range'
conf_err "syntax" '[server]\nlisten\n' '2: syntax error'
conf_err "bad order" '[queue]\norder = newest\n' '2: queue.order: "newest" is not one of'
conf_err "bad verdicts" '[queue]\nverdicts = review,maybe\n' '2: queue.verdicts: "maybe"'
conf_err "review > reject" '[thresholds]\nreview = 0.9\nreject = 0.5\n' '2: thresholds.review: 0.9 is above'
conf_err "threshold of an unknown label" '[thresholds]\n\nspma_reject = 0.9\n' '3: thresholds.spma_reject: unknown label "spma"'
conf_err "bad token" '[auth]\nsubmit_tokens = blog\n' '2: auth.submit_tokens: a token entry must be name:token'
conf_err "short token" '[auth]\n\nmoderator_tokens = a:short\n' '3: auth.moderator_tokens: token "a" must be'
long=$(printf 'x%.0s' $(seq 250))
conf_err "long line" "[auth]\nsubmit_tokens = a:$long\n" '2: line longer than'
conf_err "port_file dir" "[server]\n\nport_file = $TMP/nodir/p\n" "3: server.port_file: $TMP/nodir/p: cannot be created"
conf_err "listen host" '[server]\nlisten = 999.1.1.1:80\n' '2: server.listen: 999\.1\.1\.1:80: '
printf 'blog:good-token-123456\nbad line\n' > "$TMP/tok"
"$D" -t -c "$CONF" --set model.path="$TMP/m.mfm" --set auth.submit_tokens_file="$TMP/tok" >"$TMP/out" 2>&1
expect_eq "token file exit" 1 "$?"
expect_grep "token file message" "^$TMP/tok:2: a token entry must be name:token" "$TMP/out"
"$D" -t -c "$TMP/missing.conf" >"$TMP/out" 2>&1
expect_eq "missing config" 1 "$?"
expect_grep "missing config message" "missing.conf: No such file" "$TMP/out"
"$D" -t --bogus >"$TMP/out" 2>&1
expect_eq "bad flag" 2 "$?"

# a port already taken stops start-up
python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)' > "$TMP/busy" &
BUSY=$!
wait_for 5 test -s "$TMP/busy"
expect_eq "busy port passes -t" 0 "$(ok --set server.listen=127.0.0.1:$(cat "$TMP/busy"))"
timeout 20 "$D" -f -c "$CONF" --set model.path="$TMP/m.mfm" --set server.listen=127.0.0.1:$(cat "$TMP/busy") >"$TMP/out" 2>&1
expect_eq "busy port exit" 1 "$?"
expect_grep "busy port message" '^[^ ]+ modfilterd error: server\.listen 127\.0\.0\.1:[0-9]+: Address already in use$' "$TMP/out"
kill "$BUSY"; wait "$BUSY" 2>/dev/null

# other start-up failures -t cannot rule out (here: started without -t):
# logged as errors, exit 1
start_fail() { # name regex --set...
    local name=$1 re=$2; shift 2
    timeout 20 "$D" -f -c "$CONF" --set model.path="$TMP/m.mfm" --set spool.path= \
        --set model.state_dir="$TMP/state" "$@" >"$TMP/out" 2>&1
    expect_eq "$name exit" 1 "$?"
    expect_grep "$name message" "^[^ ]+ modfilterd error: $re" "$TMP/out"
    if grep -q 'warning:' "$TMP/out"; then expect_eq "$name: no warning" none "$(grep 'warning:' "$TMP/out")"; fi
}
start_fail "start, unresolvable listen" 'server\.listen 999\.1\.1\.1:80: ' --set server.listen=999.1.1.1:80
start_fail "start, port_file dir missing" "server\.port_file $TMP/nodir/p: No such file" \
    --set server.listen=127.0.0.1:0 --set server.port_file="$TMP/nodir/p"
start_fail "start, socket dir missing" "server\.socket $TMP/nodir/s: No such file" \
    --set server.listen= --set server.socket="$TMP/nodir/s"
finish
