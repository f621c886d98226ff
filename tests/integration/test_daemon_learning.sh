#!/usr/bin/env bash
# Learning shared through Redis: two daemons on one redis-server.  A
# training event on the stream moves both daemons' scores within 1 s;
# POST /v1/train (one example, JSON Lines) counts learned / duplicates /
# errors; unlearn moves back; bad events are skipped; restart and SIGHUP
# keep what was learned; a new base model replays the stream, and a base
# switched back to takes its snapshot; /v1/stats and /metrics show the
# examples per label; model.trim_stream trims; modfilter_model_info's id
# stays the base model's over snapshots, restarts and reloads.
source "$(dirname "$0")/lib.sh"
BASE_ID=$("$BIN/modfilter" train --model "$TMP/m.mfm" --min-examples 1 "$TOP/tests/data/tiny.jsonl" 2>&1 \
    >/dev/null | grep -o 'model id [0-9a-f]*' | cut -d' ' -f3) && [ -n "$BASE_ID" ] \
    || { echo "cannot train the test model"; exit 1; }
start_redis
MOD=modtoken-0123456789 SUB=subtoken-0123456789
COMMON=(--set server.workers=2 --set auth.moderator_tokens=alice:$MOD
        --set auth.submit_tokens=blog:$SUB --set model.snapshot_interval_s=1)

# Daemon A uses lib.sh's DPID/PORT/URL; daemon B is started by hand.
start_daemon --set model.state_dir="$TMP/stateA" "${COMMON[@]}"
PID_A=$DPID URL_A=$URL
start_b() {
    rm -f "$TMP/portB"
    "$BIN/modfilterd" -f -c "$CONF" --set model.path="$TMP/m.mfm" \
        --set server.listen=127.0.0.1:0 --set server.port_file="$TMP/portB" \
        --set redis.url="redis://127.0.0.1:$REDIS_PORT/0" --set spool.path= \
        --set model.state_dir="$TMP/stateB" "${COMMON[@]}" "$@" 2>>"$TMP/b.log" &
    PID_B=$!
    wait_for 20 test -s "$TMP/portB" || { echo "daemon B did not start:"; cat "$TMP/b.log"; exit 1; }
    URL_B="http://127.0.0.1:$(cat "$TMP/portB")"
}
stop_b() {
    kill -TERM "$PID_B"; wait "$PID_B"; expect_eq "B exits 0" 0 $?
}
lib_cleanup_b() { kill -KILL "$PID_B" 2>/dev/null; lib_cleanup; }
trap lib_cleanup_b EXIT
[ -n "${KEEP_LOG:-}" ] && trap 'cat "$DLOG" "$TMP/b.log" >&2; lib_cleanup_b' EXIT
start_b
wait_for 10 curl -sf "$URL_A/readyz"; wait_for 10 curl -sf "$URL_B/readyz"

PROBE="win a free cruise, click here today"
TEACH="win a free cruise today, click here now"
score() { # URL [text] -> spam score
    curl -s -m 5 -H "Authorization: Bearer $SUB" -H 'Content-Type: application/json' \
        -d "{\"text\": \"${2:-$PROBE}\"}" "$1/v1/score" |
        grep -o '"spam":[0-9][0-9.e+-]*' | head -1 | cut -d: -f2 # cheap polls
}
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a > b + 1e-9) }'; }
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(a != "" && d < 1e-6 && d > -1e-6) }'; }
model_id() { curl -s "$1/metrics" | grep -o '^modfilter_model_info{id="[0-9a-f]*"' | cut -d'"' -f2; }
moved_above() { gt "$(score "$1")" "$2"; }
moved_below() { gt "$2" "$(score "$1")"; }
xadd() { rcli XADD modfilter:training '*' "$@" >/dev/null; }
# within_ms MS CMD...: CMD succeeds before MS milliseconds since $T0 have
# passed (wait_for counts whole seconds: too coarse for "within 1 s").
within_ms() {
    local ms=$1; shift
    until "$@"; do
        [ $(( ($(date +%s%N) - T0) / 1000000 )) -ge "$ms" ] && return 1
        sleep 0.02
    done
}

a0=$(score "$URL_A"); b0=$(score "$URL_B")
near "$a0" "$b0" || { echo "FAIL: daemons disagree at start: $a0 $b0"; FAILS=$((FAILS+1)); }

# 1. An event on the stream moves both daemons within 1 s.
T0=$(date +%s%N)
xadd op learn text "$TEACH" lang en labels '{"spam":1}' source decision id c1 by alice ts_ms "$(date +%s%3N)"
within_ms 1000 moved_above "$URL_A" "$a0" || { echo "FAIL: A did not learn within 1 s"; FAILS=$((FAILS+1)); }
within_ms 1000 moved_above "$URL_B" "$b0" || { echo "FAIL: B did not learn within 1 s"; FAILS=$((FAILS+1)); }
echo "learned on both daemons after $(( ($(date +%s%N) - T0) / 1000000 )) ms"
a1=$(score "$URL_A"); b1=$(score "$URL_B")
near "$a1" "$b1" || { echo "FAIL: daemons disagree after learning: $a1 $b1"; FAILS=$((FAILS+1)); }

# The same event again (and an Akismet report without op) changes nothing.
xadd text "$TEACH" labels '{"spam":1}' source akismet
sleep 0.3
expect_eq "duplicate event" "$a1" "$(score "$URL_A")"

# 2. Bad events are skipped with a log line; the learner goes on.
xadd op learn text "x" labels 'not json' source decision
xadd op learn labels '{"spam":1}' source decision
xadd op learn text "y" labels '{"spam":7}' source decision
xadd op explode text "y" labels '{"spam":1}'
# A label the model lacks is skipped, never made a head (with one
# example it would be unsure, and every comment would go to review).
xadd op learn text "y" labels '{"spma":1}'
# An unlearn takes back one teaching: the decision's and the Akismet
# report's taught the same example, so it stays until both are undone.
xadd op unlearn text "$TEACH" labels '{"spam":1}' source undo by alice
undos() { curl -s "$1/metrics" | grep -qE "^modfilter_training_events_total\{source=\"undo\"\} $2\$"; }
wait_for 2 undos "$URL_A" 1 || { echo "FAIL: A did not apply the undo"; FAILS=$((FAILS+1)); }
wait_for 2 undos "$URL_B" 1 || { echo "FAIL: B did not apply the undo"; FAILS=$((FAILS+1)); }
sleep 0.3 # the scoring copy is published at most LEARN_PUBLISH_MS later
expect_eq "one undo of two teachings" "$a1" "$(score "$URL_A")"
expect_eq "one undo of two teachings (B)" "$b1" "$(score "$URL_B")"
xadd op unlearn text "$TEACH" labels '{"spam":1}' source undo by alice
wait_for 2 moved_below "$URL_B" "$b1" || { echo "FAIL: unlearn did not move B back"; FAILS=$((FAILS+1)); }
wait_for 2 moved_below "$URL_A" "$a1" || { echo "FAIL: unlearn did not move A back"; FAILS=$((FAILS+1)); }
expect_grep "bad labels logged" 'training event [0-9-]+: labels: .*skipped' "$DLOG"
expect_grep "missing text logged" 'training event [0-9-]+: no text; skipped' "$TMP/b.log"
expect_grep "bad value logged" 'value must be 0 or 1; skipped' "$DLOG"
expect_grep "unknown label logged" 'unknown label "spma" \(the model.s: [a-z, ]*spam[a-z, ]*\); label skipped' "$DLOG"
expect_grep "bad op logged" 'op must be learn or unlearn; skipped' "$DLOG"
curl -s "$URL_A/metrics" > "$TMP/metrics"
expect_grep "skipped counted" '^modfilter_training_events_skipped_total 4$' "$TMP/metrics"
expect_grep "decision events" '^modfilter_training_events_total\{source="decision"\} 1$' "$TMP/metrics"
expect_grep "undo events" '^modfilter_training_events_total\{source="undo"\} 2$' "$TMP/metrics"
expect_grep "akismet events" '^modfilter_training_events_total\{source="akismet"\} 1$' "$TMP/metrics"
expect_grep "lag metric" '^modfilter_training_lag_seconds [0-9.]+$' "$TMP/metrics"

# 3. POST /v1/train: auth, one example, JSON Lines.
URL=$URL_A
r=$(req POST /v1/train "{\"text\":\"$TEACH\",\"labels\":{\"spam\":1}}")
expect_eq "train without token" 401 "${r%% *}"
r=$(req POST /v1/train "{\"text\":\"$TEACH\",\"labels\":{\"spam\":1}}" -H "Authorization: Bearer $SUB")
expect_eq "train with a submit token" 403 "${r%% *}"
r=$(req POST /v1/train '{"labels":{"spam":1}}' -H "Authorization: Bearer $MOD")
expect_eq "train without text" 400 "${r%% *}"
r=$(req POST /v1/train '{"text":"a typo","labels":{"spma":1}}' -H "Authorization: Bearer $MOD")
expect_eq "train an unknown label" 400 "${r%% *}"
expect_grep "train an unknown label: why" 'unknown label \\"spma\\" \(the model' <(echo "$r")
T0=$(date +%s%N)
r=$(req POST /v1/train "{\"text\":\"$TEACH\",\"labels\":{\"spam\":1}}" -H "Authorization: Bearer $MOD")
expect_eq "train one" 200 "${r%% *}"
expect_eq "train one learned" 1 "$(json learned)"
expect_eq "train one duplicates" 0 "$(json duplicates)"
within_ms 1000 moved_above "$URL_B" "$b0" || { echo "FAIL: upload on A did not reach B within 1 s"; FAILS=$((FAILS+1)); }
within_ms 1000 moved_above "$URL_A" "$a0" || { echo "FAIL: upload on A not applied on A within 1 s"; FAILS=$((FAILS+1)); }
expect_grep "upload has its author" 'alice' <(rcli XREVRANGE modfilter:training + - COUNT 1)
r=$(req POST /v1/train "{\"text\":\"$TEACH\",\"labels\":{\"spam\":1}}" -H "Authorization: Bearer $MOD")
expect_eq "train one again: duplicate" 1 "$(json duplicates)"
printf '%s\n' \
    '{"text": "cheap watches and bags, order online", "labels": {"spam": 1}}' \
    '{"text": "what a thoughtful article, thank you", "labels": {"spam": 0, "abuse": 0}, "lang": "en"}' \
    '' \
    '{"text": "cheap watches and bags, order online", "labels": {"spam": 1}}' \
    "{\"text\": \"$TEACH\", \"labels\": {\"spam\": 1}}" \
    '{"text": "no labels"}' \
    'not json' > "$TMP/up.jsonl"
out=$(curl -s -m 10 -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $MOD" \
    -H 'Content-Type: application/x-ndjson' --data-binary @"$TMP/up.jsonl" "$URL_A/v1/train")
expect_eq "ndjson status" 200 "$out"
expect_eq "ndjson learned" 2 "$(json learned)"
expect_eq "ndjson duplicates" 2 "$(json duplicates)"
expect_eq "ndjson errors" 2 "$(json errors)"
expect_grep "ndjson error lines" 'line 6: .*line 7: invalid JSON' "$TMP/body"
r=$(curl -s -m 5 -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $MOD" -H "Content-Type: text/plain" -d x "$URL_A/v1/train")
expect_eq "train: wrong content type" 415 "$r"
expect_eq "upload events on the stream" 6 "$(rcli XRANGE modfilter:training - + | grep -c '^upload$')"
watches() { score "$1" "cheap watches and bags, order online"; }
w_probe() { gt "$(watches "$URL_B")" 0.5; }
wait_for 2 w_probe || { echo "FAIL: B did not learn the upload"; FAILS=$((FAILS+1)); }

# 4. /v1/stats and /metrics: examples per label.
sleep 0.3
URL=$URL_B
r=$(req GET /v1/stats '' -H "Authorization: Bearer $MOD")
if [ "${r%% *}" != 501 ]; then # moderation.c answers /v1/stats
    expect_eq "stats status" 200 "${r%% *}"
    expect_eq "stats spam positives" 14 "$(json labels.spam.examples.1)"
    expect_eq "stats spam negatives" 13 "$(json labels.spam.examples.0)"
    expect_eq "stats spam sure" null "$(json labels.spam.unsure_reason)"
    expect_eq "no head from a typo" null "$(json labels.spma)"
fi
r=$(req GET /v1/stats '' -H "Authorization: Bearer $SUB")
expect_eq "stats with a submit token" 403 "${r%% *}"
curl -s "$URL_B/metrics" > "$TMP/metrics"
expect_grep "label examples metric" '^modfilter_label_examples\{label="spam",class="1"\} 14$' "$TMP/metrics"
expect_grep "unsure metric" '^modfilter_label_unsure\{label="spam"\} 0$' "$TMP/metrics"
expect_grep "upload events metric" '^modfilter_training_events_total\{source="upload"\} 6$' "$TMP/metrics"

# 5. Restart keeps what was learned: snapshot at SIGTERM, loaded at start.
b_before=$(score "$URL_B"); w_before=$(watches "$URL_B")
stop_b
ls "$TMP/stateB" | grep -qE '^learned-[0-9a-f]{16}-[0-9]+-[0-9]+\.mfm$' \
    || { echo "FAIL: no snapshot in stateB: $(ls "$TMP/stateB")"; FAILS=$((FAILS+1)); }
start_b
expect_grep "snapshot loaded" 'learned state: .*stateB/learned-' "$TMP/b.log"
expect_eq "score kept over restart" "$b_before" "$(score "$URL_B")"
expect_eq "upload kept over restart" "$w_before" "$(watches "$URL_B")"
# ... and events added while it was down are replayed after the snapshot.
CRYPTO="read my blog about crypto gains"
c_before=$(score "$URL_B" "$CRYPTO")
stop_b
xadd op learn text "$CRYPTO" labels '{"spam":1}' source decision
start_b
crypto_moved() { gt "$(score "$URL_B" "$CRYPTO")" "$c_before"; }
wait_for 2 crypto_moved || { echo "FAIL: the event after the snapshot was not replayed"; FAILS=$((FAILS+1)); }
b_before=$(score "$URL_B")
# The model in use is still the base's, by its id: B started from its
# snapshot, A learned on after its periodic ones (the learned models'
# own ids, their snapshots' checksums, differ between daemons).
expect_eq "model id from a snapshot (B)" "$BASE_ID" "$(model_id "$URL_B")"
expect_eq "model id after snapshots (A)" "$BASE_ID" "$(model_id "$URL_A")"

# 6. SIGHUP with the same base keeps learning.
n=$(grep -c 'reload: same base model' "$TMP/b.log")
kill -HUP "$PID_B"
hup_seen() { [ "$(grep -c 'reload: same base model' "$TMP/b.log")" -gt "$n" ]; }
wait_for 5 hup_seen || { echo "FAIL: no reload"; FAILS=$((FAILS+1)); }
expect_eq "score kept over SIGHUP" "$b_before" "$(score "$URL_B")"
expect_eq "model id over SIGHUP" "$BASE_ID" "$(model_id "$URL_B")"

# 7. SIGHUP with a new base model (no event id): the whole stream is
# replayed on it.
head -40 "$TOP/tests/data/tiny.jsonl" > "$TMP/part.jsonl"
"$BIN/modfilter" train --model "$TMP/m2.mfm" --min-examples 1 "$TMP/part.jsonl" >/dev/null 2>&1
c_base=$(echo "{\"text\": \"$CRYPTO\"}" | "$BIN/modfilter" score --model "$TMP/m2.mfm" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["scores"]["spam"])')
cp "$TMP/m2.mfm" "$TMP/m.mfm"
n=$(grep -c 'reload: new base model' "$TMP/b.log")
kill -HUP "$PID_B"
newbase() { [ "$(grep -c 'reload: new base model .* after the stream' "$TMP/b.log")" -gt "$n" ]; }
wait_for 5 newbase || { echo "FAIL: new base not taken"; FAILS=$((FAILS+1)); }
c_before=$c_base
wait_for 3 crypto_moved || { echo "FAIL: stream not replayed on the new base"; FAILS=$((FAILS+1)); }

# 7b. An exported model (a snapshot copied as model.path) as the new base:
# only the events after its own event id are replayed.
wait_for 3 ls "$TMP"/stateA/learned-*.mfm || { echo "FAIL: no snapshot on A"; FAILS=$((FAILS+1)); }
copy_snapshot() { # A may replace its snapshot meanwhile: retry
    snap=$(ls "$TMP"/stateA/learned-*.mfm | tail -1) && cp "$snap" "$TMP/export.mfm"
}
wait_for 3 copy_snapshot || { echo "FAIL: cannot copy A's snapshot"; FAILS=$((FAILS+1)); }
snap_id=$(basename "$snap" .mfm | cut -d- -f3-)
cp "$TMP/export.mfm" "$TMP/m.mfm"
kill -HUP "$PID_B"
exported() { grep -q "reload: new base model .* after $snap_id are replayed" "$TMP/b.log"; }
wait_for 5 exported || { echo "FAIL: the exported model's event id $snap_id was not used"; FAILS=$((FAILS+1)); }
wait_for 3 crypto_moved || { echo "FAIL: the exported model lost what was learned"; FAILS=$((FAILS+1)); }

# 7c. Back to a base that has a snapshot (m2's, written when 7b left it):
# the snapshot stands in for the base file, whose model is freed then.
m2_id=$(grep -o 'reload: new base model [0-9a-f]*: training events after the stream' "$TMP/b.log" |
    tail -1 | cut -d' ' -f5 | tr -d :)
wait_for 3 ls "$TMP"/stateB/learned-"$m2_id"-*.mfm || { echo "FAIL: no snapshot of $m2_id on B"; FAILS=$((FAILS+1)); }
cp "$TMP/m2.mfm" "$TMP/m.mfm"
kill -HUP "$PID_B"
back() { grep -q "reload: new base model $m2_id: training events after [0-9]" "$TMP/b.log"; }
wait_for 5 back || { echo "FAIL: m2's snapshot not taken back"; tail -5 "$TMP/b.log"; FAILS=$((FAILS+1)); }
expect_eq "model id of a base back from its snapshot" "$m2_id" "$(model_id "$URL_B")"

# 8. Periodic snapshot (model.snapshot_interval_s=1) on A; clean exits.
sleep 1.2
ls "$TMP/stateA" | grep -q '^learned-' || { echo "FAIL: no periodic snapshot on A"; FAILS=$((FAILS+1)); }
expect_eq "one snapshot per base" 1 "$(ls "$TMP/stateA" | grep -c '^learned-')"
stop_b
stop_daemon
expect_eq "A exits 0" 0 "$STOP_RC"

# 9. model.trim_stream=1: a daemon records its snapshot's event id and
# trims the events every recorded snapshot includes.
n_before=$(rcli XLEN modfilter:training)
start_daemon --set model.state_dir="$TMP/stateC" "${COMMON[@]}" --set model.trim_stream=1
xadd op learn text "trim me please, cheap pills" labels '{"spam":1}' source decision
trimmed() { [ "$(rcli XLEN modfilter:training)" -lt "$n_before" ]; }
wait_for 5 trimmed || { echo "FAIL: stream not trimmed ($n_before events)"; FAILS=$((FAILS+1)); }
expect_eq "trimmed to the snapshot's event" 1 "$(rcli XLEN modfilter:training)"
expect_grep "snapshot recorded" 'stateC' <(rcli HKEYS modfilter:training:snapshots)
stop_daemon
expect_eq "C exits 0" 0 "$STOP_RC"

# 10. A state dir that exists but cannot be read (here a file; in
# production, its permissions) stops the start, and a reload to a new base
# keeps the running model: its snapshots may hold what the trimmed stream
# no longer has, and a snapshot written without them would lose it.
: > "$TMP/statefile"
timeout 20 "$BIN/modfilterd" -f -c "$CONF" --set model.path="$TMP/m.mfm" \
    --set server.listen=127.0.0.1:0 --set redis.url="redis://127.0.0.1:$REDIS_PORT/0" \
    --set spool.path= --set model.state_dir="$TMP/statefile" 2>"$TMP/e.log"
expect_eq "unreadable state dir stops the start" 1 $?
expect_grep "unreadable state dir message" "error: model.state_dir $TMP/statefile cannot be read" "$TMP/e.log"
start_daemon --set model.state_dir="$TMP/stateD" "${COMMON[@]}"
id_d=$(model_id "$URL")
mv "$TMP/stateD" "$TMP/stateD.away" 2>/dev/null; : > "$TMP/stateD"
head -25 "$TOP/tests/data/tiny.jsonl" > "$TMP/part.jsonl"
"$BIN/modfilter" train --model "$TMP/m3.mfm" --min-examples 1 "$TMP/part.jsonl" >/dev/null 2>&1
cp "$TMP/m3.mfm" "$TMP/m.mfm"
kill -HUP "$DPID"
kept() { grep -q "reload: model.state_dir $TMP/stateD cannot be read; keeping the running model" "$DLOG"; }
wait_for 5 kept || { echo "FAIL: unreadable state dir at reload not reported"; FAILS=$((FAILS+1)); }
expect_eq "model kept at reload" "$id_d" "$(model_id "$URL")"
stop_daemon

# 11. An upload of more events than a request keeps waiting on Redis at
# once (256): all sent, all counted.
rm -f "$TMP/stateD"
start_daemon --set model.state_dir="$TMP/stateE" "${COMMON[@]}"
n0=$(rcli XLEN modfilter:training)
for i in $(seq 1 600); do
    printf '{"text": "bulk upload example number %d", "labels": {"spam": 0}}\n' "$i"
done > "$TMP/bulk.jsonl"
out=$(curl -s -m 20 -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $MOD" \
    -H 'Content-Type: application/x-ndjson' --data-binary @"$TMP/bulk.jsonl" "$URL/v1/train")
expect_eq "bulk upload status" 200 "$out"
expect_eq "bulk upload counted" "600 0" "$(( $(json learned) + $(json duplicates) )) $(json errors)"
expect_eq "bulk upload events" $((n0 + 600)) "$(rcli XLEN modfilter:training)"
# Redis refusing writes: the first window fails, the rest is not sent
rcli CONFIG SET min-replicas-to-write 1 >/dev/null
out=$(curl -s -m 20 -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $MOD" \
    -H 'Content-Type: application/x-ndjson' --data-binary @"$TMP/bulk.jsonl" "$URL/v1/train")
rcli CONFIG SET min-replicas-to-write 0 >/dev/null
expect_eq "bulk upload refused" 503 "$out"
expect_eq "nothing stored when refused" $((n0 + 600)) "$(rcli XLEN modfilter:training)"
stop_daemon
finish
