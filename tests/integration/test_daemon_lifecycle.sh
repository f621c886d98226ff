#!/usr/bin/env bash
# SIGHUP reloads config and model (a bad one keeps the running one; a
# restart-only key that changed is named in the log);
# SIGTERM answers the requests in flight, then exits 0.
source "$(dirname "$0")/lib.sh"
train_model
start_redis
cp "$CONF" "$TMP/d.conf"; CONF="$TMP/d.conf"
start_daemon --set server.workers=2 --set redis.timeout_ms=4000
model_line() { curl -s "$URL/metrics" | grep '^modfilter_model_info'; }
log_count_above() { [ "$(grep -cE "$1" "$DLOG")" -gt "$2" ]; }
hup_and_wait() { # log-regex
    local n; n=$(grep -cE "$1" "$DLOG")
    kill -HUP "$DPID"
    wait_for 20 log_count_above "$1" "$n"
}
id1=$(model_line); expect_grep "first model" 'version="1"' <(echo "$id1")

# a good new model
head -30 "$TOP/tests/data/tiny.jsonl" > "$TMP/part.jsonl"
"$BIN/modfilter" train --model "$TMP/m2.mfm" "$TMP/part.jsonl" >/dev/null 2>&1
mv "$TMP/m2.mfm" "$TMP/m.mfm"
hup_and_wait 'reloaded: model' || { echo "FAIL: no reload"; FAILS=$((FAILS+1)); }
id2=$(model_line)
expect_grep "second model" 'version="2"' <(echo "$id2")
[ "$id1" != "$id2" ] || { echo "FAIL: same model id after reload"; FAILS=$((FAILS+1)); }
r=$(req POST /v1/score '{"text":"hello"}'); expect_eq "serving after reload" 200 "${r%% *}"

# a corrupt model: refused, the running one stays
cp "$TMP/m.mfm" "$TMP/good.mfm"
head -c 200 "$TMP/good.mfm" > "$TMP/m.mfm"
hup_and_wait 'reload: .*keeping' || { echo "FAIL: bad model not reported"; FAILS=$((FAILS+1)); }
expect_grep "bad model names its key" "reload: --set: model\.path: $TMP/m\.mfm: .*; keeping" "$DLOG"
expect_eq "model kept" "$id2" "$(model_line)"
r=$(req POST /v1/comments '{"text":"buy now cheap"}'); expect_eq "serving with kept model" 200 "${r%% *}"
cp "$TMP/good.mfm" "$TMP/m.mfm"

# a bad config: refused, with file:line
printf '[queue]\nverdicts = sometimes\n' >> "$CONF"
hup_and_wait 'reload: .*d.conf:[0-9]+: queue.verdicts' || { echo "FAIL: bad config not reported"; FAILS=$((FAILS+1)); }
expect_eq "model kept after bad config" "$id2" "$(model_line)"
r=$(req POST /v1/score '{"text":"hello"}'); expect_eq "serving with kept config" 200 "${r%% *}"

# a threshold for a label the model lacks (a typo): refused, with file:line
cp "$TOP/config/modfilterd.conf" "$CONF"
printf '[thresholds]\nspma_review = 0.2\n' >> "$CONF"
hup_and_wait 'reload: .*d.conf:[0-9]+: thresholds.spma_review: unknown label' || { echo "FAIL: unknown label not reported"; FAILS=$((FAILS+1)); }
expect_eq "model kept after unknown label" "$id2" "$(model_line)"

# a good config change takes effect: nothing is queued any more
cp "$TOP/config/modfilterd.conf" "$CONF"
printf '[queue]\nverdicts = allow\n' >> "$CONF"
hup_and_wait 'reloaded: model' || { echo "FAIL: no reload"; FAILS=$((FAILS+1)); }
r=$(req POST /v1/comments '{"id":"after-hup","text":"you are an idiot"}')
expect_eq "new queue.verdicts status" 200 "${r%% *}"
expect_eq "new queue.verdicts applied" false "$(json queued)"

# tokens added by a reload apply at once
cp "$TOP/config/modfilterd.conf" "$CONF"
printf '[auth]\nsubmit_tokens = blog:reloaded-token-123\n' >> "$CONF"
hup_and_wait 'reloaded: model'
r=$(req POST /v1/score '{"text":"hello"}'); expect_eq "token now needed" 401 "${r%% *}"
r=$(req POST /v1/score '{"text":"hello"}' -H 'Authorization: Bearer reloaded-token-123')
expect_eq "reloaded token" 200 "${r%% *}"
cp "$TOP/config/modfilterd.conf" "$CONF"
hup_and_wait 'reloaded: model'

# a restart-only key: the reload names it and the running value stays; none
# of the reloads above changed one, so none said anything of the kind
expect_eq "no restart-only change before" 0 "$(grep -c 'effect at restart' "$DLOG")"
printf '[limits]\nmax_body = 100000\n' >> "$CONF"
hup_and_wait 'reloaded: model'
expect_grep "changed key named" 'warning: reload: limits\.max_body changed; it takes effect at restart$' "$DLOG"
python3 -c 'import json; print(json.dumps({"text": "x" * 70000}))' > "$TMP/big.json"
r=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/big.json" "$URL/v1/score")
expect_eq "running max_body kept" 413 "$r"
# back to the running value: nothing left to restart for
cp "$TOP/config/modfilterd.conf" "$CONF"
hup_and_wait 'reloaded: model'
expect_eq "restart-only lines" 1 "$(grep -c 'effect at restart' "$DLOG")"

# SIGTERM while requests wait on Redis: every one is answered, exit 0
rcli DEBUG SLEEP 1.5 >/dev/null &
SLEEPER=$!
sleep 0.1
CURLS=()
for i in $(seq 1 12); do
    curl -s -m 10 -o "$TMP/inflight.$i" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"id\":\"inflight-$i\",\"text\":\"buy cheap pills $i\"}" "$URL/v1/comments" > "$TMP/inflight.$i.code" &
    CURLS+=($!)
done
clients() { [ "$(ss -Htn state established "( dport = :$PORT )" | wc -l)" -ge 12 ]; }
wait_for 5 clients || echo "(only $(ss -Htn state established "( dport = :$PORT )" | wc -l) clients connected)"
sleep 0.1
stop_daemon
wait "${CURLS[@]}" "$SLEEPER"
expect_eq "exit status after SIGTERM" 0 "$STOP_RC"
for i in $(seq 1 12); do
    expect_eq "in-flight $i status" 200 "$(cat "$TMP/inflight.$i.code")"
    expect_grep "in-flight $i queued" '"queued":true' "$TMP/inflight.$i"
done
expect_eq "in-flight stored" 12 "$(rcli --scan --pattern 'modfilter:item:inflight-*' | wc -l)"
expect_grep "stop logged" 'SIGTERM: stopping' "$DLOG"

# a reload that names another socket (a restart-only key): the exit removes
# the socket this daemon made, not the one the new config names, which
# may be another daemon's
cp "$TOP/config/modfilterd.conf" "$CONF"
printf '[server]\nsocket = %s\n' "$TMP/a.sock" >> "$CONF"
start_daemon
expect_eq "own socket made" yes "$([ -S "$TMP/a.sock" ] && echo yes)"
: > "$TMP/other.sock"
cp "$TOP/config/modfilterd.conf" "$CONF"
printf '[server]\nsocket = %s\n' "$TMP/other.sock" >> "$CONF"
hup_and_wait 'server\.socket changed'
stop_daemon
expect_eq "exit status" 0 "$STOP_RC"
expect_eq "own socket removed" no "$([ -e "$TMP/a.sock" ] && echo yes || echo no)"
expect_eq "the other socket left alone" yes "$([ -e "$TMP/other.sock" ] && echo yes)"
finish
