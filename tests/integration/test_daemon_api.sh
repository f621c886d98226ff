#!/usr/bin/env bash
# modfilterd's HTTP API against a real Redis: submit stores a full record
# exactly once, score stores nothing, every error case gets its JSON error.
source "$(dirname "$0")/lib.sh"
train_model
start_redis
start_daemon --set server.workers=2

# /healthz, /readyz
r=$(req GET /healthz); expect_eq healthz 200 "${r%% *}"
r=$(req GET /readyz); expect_eq readyz 200 "${r%% *}"
expect_eq "readyz redis" true "$(json redis)"

# submit with every field: stored once, with every field
body='{"id":"c-1","text":"Check out my channel for free iPhone http://bit.ly/x","author":{"name":"Ann","email":"a@example.com","url":"http://a.example","ip":"192.0.2.1"},"post":"p-7","lang":"en"}'
r=$(req POST /v1/comments "$body"); expect_eq "submit status" 200 "${r%% *}"
expect_eq "submit id" c-1 "$(json id)"
expect_eq "submit queued" true "$(json queued)"
expect_grep "submit verdict" '"verdict":"(review|reject)"' "$TMP/body"
expect_grep "submit scores" '"scores":\{"spam":[0-9.e-]+,"abuse":' "$TMP/body"
expect_grep "submit reasons" '"reasons":\{"spam":\[\{"feature":"[a-z]+:' "$TMP/body"
expect_grep "submit unsure" '"unsure":\[' "$TMP/body"
expect_grep "submit lang" '"lang":"' "$TMP/body"
expect_eq "queue length" 1 "$(rcli ZCARD modfilter:queue)"
rcli HGET modfilter:item:c-1 record > "$TMP/body"
for f in id text author.name author.email author.url author.ip post scores.spam \
         verdict reasons.spam lang model_id daemon_version received_at; do
    v=$(json "$f"); [ -n "$v" ] && [ "$v" != null ] || { echo "FAIL: record lacks $f"; FAILS=$((FAILS+1)); }
done
expect_eq "record text" "Check out my channel for free iPhone http://bit.ly/x" "$(json text)"
expect_eq "record ip" 192.0.2.1 "$(json author.ip)"
expect_grep "record received_at" '"received_at":"20[0-9-]+T[0-9:.]+Z"' "$TMP/body"
expect_eq "no state until decided (= queued)" "" "$(rcli HGET modfilter:item:c-1 state)"
expect_eq "no urgent set under queue.order oldest" 0 "$(rcli EXISTS modfilter:queue:urgent)"

# the same id again: the stored result, nothing queued twice
r=$(req POST /v1/comments '{"id":"c-1","text":"a different text entirely"}')
expect_eq "resubmit status" 200 "${r%% *}"
expect_eq "resubmit queued" true "$(json queued)"
expect_eq "resubmit id" c-1 "$(json id)"
expect_grep "resubmit scores" '"scores":\{"spam"' "$TMP/body"
expect_eq "queue length after resubmit" 1 "$(rcli ZCARD modfilter:queue)"

# no id: the daemon makes a unique one
req POST /v1/comments '{"text":"buy cheap pills now"}' >/dev/null; id1=$(json id)
req POST /v1/comments '{"text":"buy cheap pills now"}' >/dev/null; id2=$(json id)
[ -n "$id1" ] && [ "$id1" != "$id2" ] || { echo "FAIL: generated ids [$id1] [$id2]"; FAILS=$((FAILS+1)); }
expect_eq "generated ids queued" 3 "$(rcli ZCARD modfilter:queue)"

# score only: nothing stored
r=$(req POST /v1/score '{"id":"s-1","text":"you are an idiot"}')
expect_eq "score status" 200 "${r%% *}"
expect_eq "score queued" false "$(json queued)"
expect_eq "score stores nothing" 0 "$(rcli EXISTS modfilter:item:s-1)"
expect_eq "queue after score" 3 "$(rcli ZCARD modfilter:queue)"

# errors: status and code
check_err() { # name status code method path body [curl args]
    local name=$1 st=$2 code=$3; shift 3
    local r; r=$(req "$@")
    expect_eq "$name status" "$st" "${r%% *}"
    expect_eq "$name code" "$code" "$(json error.code 2>/dev/null)"
}
check_err "bad json" 400 invalid_json POST /v1/comments '{"text": '
check_err "duplicate key" 400 invalid_json POST /v1/comments '{"text":"a","text":"b"}'
expect_eq "duplicate key message" "line 1, column 18: duplicate object key near '\"text\"'" "$(json error.message)"
check_err "NUL" 400 invalid_json POST /v1/comments '{"text":"a\u0000b"}'
expect_eq "NUL message" 'line 1, column 18: \u0000 (a NUL character) is not allowed in strings' "$(json error.message)"
check_err "missing text" 400 invalid_request POST /v1/comments '{"id":"x"}'
check_err "empty text" 400 invalid_request POST /v1/comments '{"text":""}'
check_err "text not string" 400 invalid_request POST /v1/comments '{"text":5}'
check_err "author not object" 400 invalid_request POST /v1/comments '{"text":"a","author":"bob"}'
check_err "author field type" 400 invalid_request POST /v1/comments '{"text":"a","author":{"name":1}}'
check_err "unknown field" 400 invalid_request POST /v1/comments '{"text":"a","colour":"red"}'
check_err "unknown author field" 400 invalid_request POST /v1/comments '{"text":"a","author":{"age":"3"}}'
check_err "bad id" 400 invalid_request POST /v1/comments '{"id":"a b","text":"a"}'
check_err "long id" 400 invalid_request POST /v1/comments "{\"id\":\"$(printf 'x%.0s' $(seq 129))\",\"text\":\"a\"}"
check_err "not an object" 400 invalid_request POST /v1/comments '["text"]'
check_err "NUL escape" 400 invalid_json POST /v1/comments '{"text":"a\u0000b"}'
check_err "invalid utf-8" 400 invalid_json POST /v1/comments "$(printf '{"text":"caf\xe9"}')"
check_err "empty body" 400 invalid_json POST /v1/score '' -H 'Content-Type: application/json'
r=$(curl -s -o "$TMP/body" -w '%{http_code}' -d '{"text":"a"}' "$URL/v1/comments")
expect_eq "form content type" 415 "$r"; expect_eq "415 code" unsupported_media_type "$(json error.code)"
r=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: text/plain' -d '{"text":"a"}' "$URL/v1/score")
expect_eq "text/plain" 415 "$r"
r=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json; charset=utf-8' -d '{"text":"a"}' "$URL/v1/score")
expect_eq "json with charset" 200 "$r"
python3 -c 'import json; print(json.dumps({"text": "x" * 70000}))' > "$TMP/big.json"
r=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/big.json" "$URL/v1/comments")
expect_eq "too large" 413 "$r"; expect_eq "413 code" payload_too_large "$(json error.code)"
check_err "unknown route" 404 not_found GET /nope
check_err "wrong method" 405 method_not_allowed GET /v1/comments
expect_eq "405 message" "/v1/comments takes POST only" "$(json error.message)"
check_err "wrong method, GET route" 405 method_not_allowed DELETE /healthz
expect_eq "405 message names HEAD" "/healthz takes GET, HEAD only" "$(json error.message)"
curl -s -D "$TMP/h" -o /dev/null -X PUT "$URL/v1/score"
expect_grep "405 Allow" '^Allow: POST' "$TMP/h"
check_err "moderator route" 401 unauthorized GET /v1/queue

# a verdict outside queue.verdicts is answered, not stored
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
start_daemon --set queue.verdicts=allow
r=$(req POST /v1/comments '{"id":"n-1","text":"you are an idiot"}')
expect_eq "unqueued verdict status" 200 "${r%% *}"
expect_eq "unqueued verdict queued" false "$(json queued)"
expect_eq "unqueued verdict not stored" 0 "$(rcli EXISTS modfilter:item:n-1)"
# an id queued earlier (c-1: review, queued by the first daemon) posted
# again with a verdict that is not queued now: its stored result, not the
# fresh score with "queued": false (DESIGN.md, HTTP API)
r=$(req POST /v1/comments '{"id":"c-1","text":"you are an idiot"}')
expect_eq "queued id again, unqueued verdict: status" 200 "${r%% *}"
expect_eq "queued id again, unqueued verdict: queued" true "$(json queued)"
expect_eq "queued id again, unqueued verdict: the stored verdict" \
    "$(rcli HGET modfilter:item:c-1 record | python3 -c 'import json,sys; print(json.load(sys.stdin)["verdict"])')" "$(json verdict)"
expect_eq "queued id again: the stored scores" \
    "$(rcli HGET modfilter:item:c-1 record | python3 -c 'import json,sys; print(json.load(sys.stdin)["scores"])')" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["scores"])' "$TMP/body")"
expect_eq "queued id again: nothing queued twice" 3 "$(rcli ZCARD modfilter:queue)"

# metrics
curl -s "$URL/metrics" > "$TMP/metrics"
for m in modfilter_queue_length modfilter_queue_oldest_age_seconds \
         'modfilter_requests_total\{route="comments",status="200"\}' \
         'modfilter_verdicts_total\{verdict="review"\}' \
         'modfilter_request_duration_seconds_bucket\{route="comments",le="\+Inf"\}' \
         modfilter_redis_errors_total 'modfilter_model_info\{id="[0-9a-f]+",version="1"\} 1' \
         'modfilter_label_examples\{label="spam",class="1"\} [1-9]' \
         process_resident_memory_bytes; do
    expect_grep "metric $m" "^$m" "$TMP/metrics"
done
expect_grep "queue length value" '^modfilter_queue_length 3$' "$TMP/metrics"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
finish
