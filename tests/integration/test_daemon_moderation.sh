#!/usr/bin/env bash
# The moderation queue: list, show, claim (and its expiry), decisions
# (single, bulk, concurrent), undo and its window, the audit log, stats,
# the training stream the decisions feed, roles; then `modfilter queue`;
# ids percent-encoded in the path; HEAD on the GET routes.
source "$(dirname "$0")/lib.sh"
train_model
start_redis
SUB=submit-token-0123456789 MODA=alice-token-0123456789 MODB=bob-token-0123456789
start_daemon --set server.workers=2 --set auth.submit_tokens="blog:$SUB" \
    --set auth.moderator_tokens="alice:$MODA,bob:$MODB" \
    --set queue.verdicts=allow,review,reject --set queue.claim_ttl_s=6 \
    --set queue.undo_window_s=5 --set server.socket="$TMP/sock"
A=(-H "Authorization: Bearer $MODA") B=(-H "Authorization: Bearer $MODB")
st() { local r; r=$(req "$@"); echo "${r%% *}"; }
# py EXPR: evaluate EXPR with j = the JSON in $TMP/body.
py() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" "$TMP/body"; }

for i in 1 2 3 4 5 6; do
    expect_eq "submit c$i" 200 "$(st POST /v1/comments "{\"id\":\"c$i\",\"text\":\"comment number $i, check out my channel\"}" \
        -H "Authorization: Bearer $SUB")"
    expect_eq "c$i queued" true "$(json queued)"
done

# roles
expect_eq "no token" 401 "$(st GET /v1/queue)"
expect_eq "submit token" 403 "$(st GET /v1/queue "" -H "Authorization: Bearer $SUB")"
expect_eq "submit token decides" 403 "$(st POST /v1/queue/c1/decision '{"decision":"approve"}' -H "Authorization: Bearer $SUB")"
expect_eq "unknown token undoes" 401 "$(st POST /v1/queue/c1/undo "" -H "Authorization: Bearer nope-nope-nope")"
expect_eq "submit token history" 403 "$(st GET /v1/history "" -H "Authorization: Bearer $SUB")"

# a Redis error is named in the reply and in the log, not "not available"
rcli SET modfilter:item:bad1 x >/dev/null
expect_eq "wrong-type item" 503 "$(st GET /v1/queue/bad1 "" "${A[@]}")"
expect_grep "Redis's error in the reply" 'Redis error: .*WRONGTYPE' "$TMP/body"
expect_grep "Redis's error in the log" 'warning: moderation: Redis error: .*WRONGTYPE' "$DLOG"
rcli DEL modfilter:item:bad1 >/dev/null

# list: oldest first, pages by cursor
expect_eq "list" 200 "$(st GET /v1/queue "" "${A[@]}")"
expect_eq "length" 6 "$(json length)"
expect_eq "ids" "c1 c2 c3 c4 c5 c6" "$(py '" ".join(i["id"] for i in j["items"])')"
expect_eq "no next page" null "$(json next_cursor)"
expect_eq "item fields" "True" "$(py 'all(k in j["items"][0] for k in ("text","author","post","scores","verdict","reasons","lang","received_at"))')"
expect_eq "post not given: null" "None" "$(py 'j["items"][0]["post"]')"
expect_eq "rfc 3339" "True" "$(py '__import__("re").fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", j["items"][0]["received_at"]) is not None')"
expect_eq "page 1" 200 "$(st GET '/v1/queue?limit=4' "" "${A[@]}")"
expect_eq "page 1 cursor" c4 "$(json next_cursor)"
expect_eq "page 2" 200 "$(st GET '/v1/queue?limit=4&cursor=c4' "" "${A[@]}")"
expect_eq "page 2 ids" "c5 c6" "$(py '" ".join(i["id"] for i in j["items"])')"
expect_eq "bad limit" 400 "$(st GET '/v1/queue?limit=0' "" "${A[@]}")"
expect_eq "unknown cursor" 400 "$(st GET '/v1/queue?cursor=zz' "" "${A[@]}")"

# show
expect_eq "show" 200 "$(st GET /v1/queue/c3 "" "${A[@]}")"
expect_eq "show id" c3 "$(json id)"
expect_eq "show state" queued "$(json state)"
expect_eq "show unknown" 404 "$(st GET /v1/queue/nope "" "${A[@]}")"
# an earlier daemon's record has "post" only when given: the item has it
rcli --raw HGET modfilter:item:c3 record |
    python3 -c 'import json,sys; r=json.load(sys.stdin); r.pop("post"); print(json.dumps(r))' >"$TMP/rec"
rcli HSET modfilter:item:c3 record "$(cat "$TMP/rec")" >/dev/null
expect_eq "record without post" 200 "$(st GET /v1/queue/c3 "" "${A[@]}")"
expect_eq "record without post: null" "True" "$(py '"post" in j and j["post"] is None')"
expect_eq "post to an item" 405 "$(st POST /v1/queue/c3 '{}' "${A[@]}")"
expect_eq "post to an item: message" "/v1/queue/{id} takes GET, HEAD only" "$(json error.message)"

# claims: two moderators never share an unexpired item
expect_eq "alice claims" 200 "$(st POST /v1/queue/claim '{"limit":2}' "${A[@]}")"
expect_eq "alice got" "c1 c2" "$(py '" ".join(i["id"] for i in j["items"])')"
expect_eq "claimed_by" alice "$(json items.0.claimed_by)"
expect_eq "claim_expires_at" "True" "$(py '"claim_expires_at" in j["items"][0]')"
T_BOB=$(date +%s%N)
expect_eq "bob claims" 200 "$(st POST /v1/queue/claim '{"limit":10}' "${B[@]}")"
expect_eq "bob got" "c3 c4 c5 c6" "$(py '" ".join(i["id"] for i in j["items"])')"
expect_eq "nothing left" 200 "$(st POST /v1/queue/claim '{"limit":10}' "${A[@]}")"
expect_eq "nothing left items" 0 "$(py 'len(j["items"])')"
expect_eq "bad claim" 400 "$(st POST /v1/queue/claim '{"limit":"x"}' "${A[@]}")"
expect_eq "list shows claims" 200 "$(st GET /v1/queue "" "${A[@]}")"
expect_eq "list claimers" "alice alice bob bob bob bob" "$(py '" ".join(i.get("claimed_by","-") for i in j["items"])')"
expect_eq "claimed items still counted" 6 "$(json length)"

# decisions
expect_eq "reject c1" 200 "$(st POST /v1/queue/c1/decision '{"decision":"reject"}' "${A[@]}")"
expect_eq "default labels: what flagged it" "True" "$(py 'set(j["labels"].values()) <= {0,1} and len(j["labels"]) == 2')"
expect_eq "decided again" 409 "$(st POST /v1/queue/c1/decision '{"decision":"approve"}' "${B[@]}")"
expect_eq "409 code" conflict "$(json error.code)"
expect_eq "unknown item" 404 "$(st POST /v1/queue/zz/decision '{"decision":"approve"}' "${A[@]}")"
expect_eq "bad decision" 400 "$(st POST /v1/queue/c2/decision '{"decision":"maybe"}' "${A[@]}")"
expect_eq "unknown label" 400 "$(st POST /v1/queue/c2/decision '{"decision":"reject","labels":{"nope":1}}' "${A[@]}")"
expect_eq "bad label value" 400 "$(st POST /v1/queue/c2/decision '{"decision":"reject","labels":{"spam":2}}' "${A[@]}")"
expect_eq "bad json" 400 "$(st POST /v1/queue/c2/decision '{"decision":' "${A[@]}")"
expect_eq "approve c2 with labels" 200 "$(st POST /v1/queue/c2/decision '{"decision":"approve","labels":{"spam":false}}' "${A[@]}")"
T_C2=$(date +%s%N)
expect_eq "given labels" '{"spam": 0}' "$(json labels)"
expect_eq "approve default labels" 200 "$(st GET /v1/queue/c1 "" "${A[@]}")"
expect_eq "show decided" "decided reject alice" "$(py 'j["state"]+" "+j["decision"]+" "+j["decided_by"]')"
expect_eq "length after two" 4 "$(rcli ZCARD modfilter:queue)"

# undo: back to the queue with an unlearn event; 409 when not decided
expect_eq "undo c1" 200 "$(st POST /v1/queue/c1/undo "" "${B[@]}")"
expect_eq "undo queued" true "$(json queued)"
expect_eq "back in the queue" 5 "$(rcli ZCARD modfilter:queue)"
expect_eq "undo again" 409 "$(st POST /v1/queue/c1/undo "" "${B[@]}")"
expect_eq "undo unknown" 404 "$(st POST /v1/queue/zz/undo "" "${B[@]}")"
expect_eq "decide after undo" 200 "$(st POST /v1/queue/c1/decision '{"decision":"approve"}' "${B[@]}")"
expect_eq "approve labels all 0" "True" "$(py 'set(j["labels"].values()) == {0}')"

# bob vanishes: his claims expire and his items come back; decided ones never
sleep "$(python3 -c "import time; print(max(0, $T_BOB / 1e9 + 6.2 - time.time()))")"
expect_eq "after expiry" 200 "$(st POST /v1/queue/claim '{"limit":10}' "${A[@]}")"
expect_eq "expired claims return" "c3 c4 c5 c6" "$(py '" ".join(i["id"] for i in j["items"])')"

# bulk
expect_eq "bulk" 200 "$(st POST /v1/queue/decisions '{"decisions":[{"id":"c3","decision":"approve"},{"id":"c4","decision":"reject","labels":{"abuse":1}},{"id":"zz","decision":"approve"},{"id":"c3","decision":"reject"},{"id":"bad id","decision":"approve"},{"id":"c6","decision":"nope"}]}' "${A[@]}")"
expect_eq "bulk statuses" "c3:200 c4:200 zz:404 c3:409 bad id:400 c6:400" "$(py '" ".join("%s:%s" % (r["id"], r["status"]) for r in j["results"])')"
expect_eq "bulk empty" 400 "$(st POST /v1/queue/decisions '{"decisions":[]}' "${A[@]}")"

# concurrent decisions on one item: exactly one wins
pids=()
for i in $(seq 1 10); do
    curl -s -m 10 -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
        "${A[@]}" -d '{"decision":"reject"}' "$URL/v1/queue/c5/decision" > "$TMP/race.$i" &
    pids+=($!)
done
wait "${pids[@]}"
expect_eq "one 200" 1 "$(cat "$TMP"/race.* | grep -c '^200$')"
expect_eq "nine 409" 9 "$(cat "$TMP"/race.* | grep -c '^409$')"

# undo window (5 s): c2 was decided before bob's claims expired
sleep "$(python3 -c "import time; print(max(0, $T_C2 / 1e9 + 5.2 - time.time()))")"
expect_eq "undo outside the window" 409 "$(st POST /v1/queue/c2/undo "" "${A[@]}")"
expect_eq "window message" "True" "$(py '"undo_window_s" in j["error"]["message"]')"

# the training stream: one learn per decision, one unlearn per undo
rcli --raw XRANGE modfilter:training - + > "$TMP/training"
# events PYEXPR: evaluate PYEXPR with ev = the training events (dicts).
events() {
    python3 - "$TMP/training" "$1" <<'EOF'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
ev, i = [], 0
while i < len(lines):
    if re.fullmatch(r"\d+-\d+", lines[i]):
        ev.append({}); i += 1
    elif ev and i + 1 < len(lines):
        ev[-1][lines[i]] = lines[i + 1]; i += 2
    else:
        i += 1
print(eval(sys.argv[2]))
EOF
}
expect_eq "training events" "c1:learn,unlearn,learn c2:learn c3:learn c4:learn c5:learn" \
    "$(events '" ".join("%s:%s" % (k, ",".join(e["op"] for e in ev if e["id"] == k)) for k in sorted(set(e["id"] for e in ev)) if k.startswith("c"))')"
expect_eq "event fields" True "$(events 'all(e["source"] in ("decision", "undo") and e["text"].startswith("comment number") and int(e["ts_ms"]) > 0 and e["by"] in ("alice", "bob") and "lang" in e for e in ev)')"
expect_eq "given labels in the event" '{"abuse":1}' "$(events '[e["labels"] for e in ev if e["id"] == "c4"][0]')"
expect_eq "unlearn carries the learned labels" True "$(events '[e["labels"] for e in ev if e["id"] == "c1"][0] == [e["labels"] for e in ev if e["id"] == "c1"][1]')"

# decided items never reappear; undecided never disappear
expect_eq "only c6 left" 200 "$(st GET /v1/queue "" "${A[@]}")"
expect_eq "queue ids" "c6" "$(py '" ".join(i["id"] for i in j["items"])')"

# claims in parallel: four claimers, no item given twice
for i in 1 2 3 4 5 6 7 8; do
    st POST /v1/comments "{\"id\":\"e$i\",\"text\":\"parallel claim $i\"}" -H "Authorization: Bearer $SUB" >/dev/null
done
pids=()
for i in 1 2 3 4; do
    tok=$MODA; [ $((i % 2)) = 0 ] && tok=$MODB
    curl -s -m 10 -H 'Content-Type: application/json' -H "Authorization: Bearer $tok" \
        -d '{"limit":3}' "$URL/v1/queue/claim" > "$TMP/claim.$i" &
    pids+=($!)
done
wait "${pids[@]}"
python3 - "$TMP"/claim.* > "$TMP/claimed" <<'EOF'
import json, sys
ids = [i["id"] for f in sys.argv[1:] for i in json.load(open(f))["items"]]
print(len(ids), len(set(ids)), len([i for i in ids if i.startswith("e")]))
EOF
read -r n_claimed n_distinct n_e < "$TMP/claimed"
expect_eq "parallel claims distinct" "$n_claimed" "$n_distinct"
expect_eq "parallel claims took the new items" 8 "$n_e"
for i in 1 2 3 4 5 6 7 8; do
    st POST /v1/queue/e$i/decision '{"decision":"approve"}' "${A[@]}" >/dev/null
done

# history: newest first, who and what
expect_eq "history" 200 "$(st GET '/v1/history?limit=3' "" "${A[@]}")"
expect_eq "history newest" "approve e8 alice" "$(py 'j["items"][0]["action"]+" "+j["items"][0]["id"]+" "+j["items"][0]["by"]')"
CUR=$(json next_cursor)
expect_eq "history page 2" 200 "$(st GET "/v1/history?limit=100&cursor=$CUR" "" "${A[@]}")"
expect_eq "history total" 12 "$(py 'len(j["items"])')"
expect_eq "undo in history" "True" "$(py 'any(e["action"]=="undo" and e["by"]=="bob" and e["previous"]["decision"]=="reject" for e in j["items"])')"
expect_eq "at is rfc 3339" "True" "$(py 'j["items"][0]["at"].endswith("Z")')"
expect_eq "bad history cursor" 400 "$(st GET '/v1/history?cursor=x' "" "${A[@]}")"
# cursors Redis would refuse (nothing before 0-0, parts past 2^64-1): 400
# from the daemon, never sent to Redis (no 503, no Redis error counted)
errs0=$(curl -s "$URL/metrics" | awk '$1 == "modfilter_redis_errors_total" {print $2}')
for c in 0-0 99999999999999999999 1-99999999999999999999 18446744073709551616 1-18446744073709551616 1-2-3 1- -1; do
    expect_eq "history cursor $c" 400 "$(st GET "/v1/history?cursor=$c" "" "${A[@]}")"
    expect_eq "history cursor $c error" invalid_request "$(json error.code)"
done
for c in 0 0-1 18446744073709551615 18446744073709551615-18446744073709551615; do
    expect_eq "history cursor $c" 200 "$(st GET "/v1/history?cursor=$c" "" "${A[@]}")"
done
expect_eq "no Redis errors for bad cursors" "$errs0" "$(curl -s "$URL/metrics" | awk '$1 == "modfilter_redis_errors_total" {print $2}')"

# stats and metrics
expect_eq "stats" 200 "$(st GET /v1/stats "" "${A[@]}")"
expect_eq "stats figures" "1 11 3 1" "$(py '"%d %d %d %d" % (j["length"], j["decisions"]["approve"], j["decisions"]["reject"], j["decisions"]["undo"])')"
expect_eq "oldest age" "True" "$(py 'j["oldest_age_seconds"] > 0')"
curl -s "$URL/metrics" > "$TMP/metrics"
expect_grep "decisions metric" '^modfilter_decisions_total\{decision="reject"\} [0-9]' "$TMP/metrics"
expect_grep "409s counted as such" '^modfilter_requests_total\{route="moderator",status="409"\} [1-9]' "$TMP/metrics"
expect_grep "agreement metric" '^modfilter_moderator_agreement_total\{agree="yes"\} [0-9]' "$TMP/metrics"

# a training upload is in the audit log too
expect_eq "train upload" 200 "$(st POST /v1/train '{"text":"cheap pills online now","labels":{"spam":1}}' "${A[@]}")"
expect_eq "history after upload" 200 "$(st GET '/v1/history?limit=1' "" "${A[@]}")"
expect_eq "upload audited" "train upload alice cheap pills online now" "$(py 'j["items"][0]["action"]+" "+j["items"][0]["source"]+" "+j["items"][0]["by"]+" "+j["items"][0]["text"]')"
expect_eq "upload labels" '{"spam": 1}' "$(json items.0.labels)"

# a second daemon on the same Redis: claims and decisions stay exclusive
rm -f "$TMP/portB"
"$BIN/modfilterd" -f -c "$CONF" --set model.path="$TMP/m.mfm" \
    --set server.listen=127.0.0.1:0 --set server.port_file="$TMP/portB" \
    --set redis.url="redis://127.0.0.1:$REDIS_PORT/0" --set spool.path= \
    --set model.state_dir="$TMP/stateB" --set server.workers=1 \
    --set auth.submit_tokens="blog:$SUB" --set auth.moderator_tokens="alice:$MODA,bob:$MODB" \
    --set queue.verdicts=allow,review,reject 2>>"$TMP/b.log" &
PID_B=$!
trap 'kill -KILL "$PID_B" 2>/dev/null; lib_cleanup' EXIT
wait_for 20 test -s "$TMP/portB" || { echo "daemon B did not start:"; cat "$TMP/b.log"; exit 1; }
URL_B="http://127.0.0.1:$(cat "$TMP/portB")"
wait_for 10 curl -sf "$URL_B/readyz" || { echo "FAIL: B not ready"; FAILS=$((FAILS+1)); }
for i in 1 2 3 4 5 6; do
    st POST /v1/comments "{\"id\":\"g$i\",\"text\":\"two daemons $i\"}" -H "Authorization: Bearer $SUB" >/dev/null
done
pids=()
for i in 1 2 3 4; do
    u=$URL; [ $((i % 2)) = 0 ] && u=$URL_B
    curl -s -m 10 -H 'Content-Type: application/json' -H "Authorization: Bearer $MODB" \
        -d '{"limit":3}' "$u/v1/queue/claim" > "$TMP/claimB.$i" &
    pids+=($!)
done
for i in $(seq 1 10); do
    u=$URL; [ $((i % 2)) = 0 ] && u=$URL_B
    curl -s -m 10 -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
        "${A[@]}" -d '{"decision":"reject"}' "$u/v1/queue/g1/decision" > "$TMP/raceB.$i" &
    pids+=($!)
done
wait "${pids[@]}"
python3 - "$TMP"/claimB.* > "$TMP/claimed" <<'EOF'
import json, sys
ids = [i["id"] for f in sys.argv[1:] for i in json.load(open(f))["items"]]
print(len(ids), len(set(ids)))
EOF
read -r n_claimed n_distinct < "$TMP/claimed"
expect_eq "claims across daemons distinct" "$n_claimed" "$n_distinct"
expect_eq "one 200 across daemons" 1 "$(cat "$TMP"/raceB.* | grep -c '^200$')"
expect_eq "nine 409 across daemons" 9 "$(cat "$TMP"/raceB.* | grep -c '^409$')"
expect_eq "one learn for g1" 1 "$(rcli --raw XRANGE modfilter:training - + | grep -cx g1)"
expect_eq "bulk on B" 200 "$(URL=$URL_B st POST /v1/queue/decisions '{"decisions":[{"id":"g2","decision":"approve"},{"id":"g3","decision":"approve"},{"id":"g4","decision":"approve"},{"id":"g5","decision":"approve"},{"id":"g6","decision":"approve"}]}' "${B[@]}")"
kill -TERM "$PID_B"; wait "$PID_B"; expect_eq "B exits 0" 0 $?

# the command line
mq() { MODFILTER_URL=$URL MODFILTER_TOKEN=$MODA "$BIN/modfilter" queue "$@" >"$TMP/out" 2>"$TMP/err"; echo $?; }
expect_eq "submit c7" 200 "$(st POST /v1/comments '{"id":"c7","text":"cli comment"}' -H "Authorization: Bearer $SUB")"
expect_eq "cli length" 0 "$(mq length)"
expect_eq "cli length text" 2 "$(cat "$TMP/out")"
expect_eq "cli length json" 0 "$(mq length --json)"
expect_eq "cli length json value" 2 "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["length"])' <"$TMP/out")"
expect_eq "cli length json is the length alone" '{"length":2}' "$(cat "$TMP/out")"
expect_eq "cli list" 0 "$(mq list)"
expect_grep "cli list lines" '^c7 +[a-z]+ .*' "$TMP/out"
expect_grep "cli list total" '^2 undecided$' "$TMP/out"
expect_eq "cli list page" 0 "$(mq list --limit 1)"
expect_grep "cli list cursor" 'more with --cursor c6' "$TMP/out"
expect_eq "cli list json" 0 "$(mq list --json --limit 1 --cursor c6)"
expect_eq "cli list json items" c7 "$(python3 -c 'import json,sys; print(" ".join(i["id"] for i in json.load(sys.stdin)["items"]))' <"$TMP/out")"
expect_eq "cli show" 0 "$(mq show c7)"
expect_grep "cli show id" '^id: +c7$' "$TMP/out"
expect_grep "cli show text" '^cli comment$' "$TMP/out"
expect_eq "cli show unknown" 1 "$(mq show nope)"
expect_grep "cli 404 message" '404 not_found: no item nope' "$TMP/err"
expect_eq "cli claim" 0 "$(mq claim 5)"
expect_grep "cli claimed" '^claimed [12] item\(s\) until ' "$TMP/out"
expect_eq "cli reject" 0 "$(mq reject c7 --label spam)"
expect_eq "cli reject text" "c7: rejected (labels spam=1)" "$(cat "$TMP/out")"
expect_eq "cli reject again" 1 "$(mq reject c7)"
expect_grep "cli 409 message" '409 conflict: c7 is already decided' "$TMP/err"
expect_eq "cli approve json" 0 "$(mq approve c6 --json)"
expect_eq "cli approve json decision" approve "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["decision"])' <"$TMP/out")"
expect_eq "cli undo" 0 "$(mq undo c6)"
expect_grep "cli undo text" '^c6: back in the queue \(unlearned ' "$TMP/out"
expect_eq "cli history" 0 "$(mq history --limit 3)"
expect_grep "cli history line" '^[0-9T:.-]+Z +alice +undo +c6' "$TMP/out"
expect_eq "cli unix socket" 0 "$(MODFILTER_URL= "$BIN/modfilter" queue length --url "unix:$TMP/sock" --token "$MODA" >"$TMP/out" 2>"$TMP/err"; echo $?)"
expect_eq "cli unix socket length" 1 "$(cat "$TMP/out")"
expect_eq "cli no token" 1 "$(MODFILTER_TOKEN= mq length --token '')"
expect_grep "cli 401" '^modfilter: 401 unauthorized' "$TMP/err"
expect_eq "cli submit token" 1 "$(mq length --token "$SUB")"
expect_grep "cli 403" '^modfilter: 403 forbidden' "$TMP/err"
expect_eq "cli no command" 2 "$(mq)"
expect_eq "cli bad command" 2 "$(mq bogus)"
expect_eq "cli missing id" 2 "$(mq show)"
expect_eq "cli bad claim" 2 "$(mq claim x)"
expect_eq "cli label with approve" 2 "$(mq approve c6 --label spam)"
expect_eq "cli bad url" 2 "$(mq length --url ftp://x)"
expect_eq "cli unreachable" 1 "$(mq length --url "http://127.0.0.1:$(free_port)")"
expect_grep "cli unreachable message" 'cannot connect' "$TMP/err"
# -c: URL (server.listen with port 0 read from server.port_file) and the
# first moderator token from the daemon's config file
printf '[server]\nlisten = 127.0.0.1:0\nport_file = %s\n[auth]\nmoderator_tokens = alice:%s\n' \
    "$TMP/port" "$MODA" >"$TMP/cli.conf"
expect_eq "cli -c" 0 "$(MODFILTER_URL= MODFILTER_TOKEN= "$BIN/modfilter" queue length -c "$TMP/cli.conf" >"$TMP/out" 2>"$TMP/err"; echo $?)"
expect_eq "cli -c length" 1 "$(cat "$TMP/out")"
printf '[server]\nbogus = 1\n' >"$TMP/bad.conf"
expect_eq "cli -c bad config" 1 "$(MODFILTER_URL= "$BIN/modfilter" queue length -c "$TMP/bad.conf" >"$TMP/out" 2>"$TMP/err"; echo $?)"
expect_grep "cli -c bad config message" 'bad.conf:2: ' "$TMP/err"

# ids that are also route names: GET shows the item, POST stays the route
for i in claim decisions; do
    expect_eq "submit id $i" 200 "$(st POST /v1/comments "{\"id\":\"$i\",\"text\":\"an id like a route, $i\"}" \
        -H "Authorization: Bearer $SUB")"
    expect_eq "show id $i" 200 "$(st GET /v1/queue/$i "" "${A[@]}")"
    expect_eq "show id $i id" "$i queued" "$(py 'j["id"]+" "+j["state"]')"
done
expect_eq "cli show claim" 0 "$(MODFILTER_URL=$URL MODFILTER_TOKEN=$MODA "$BIN/modfilter" queue show claim >"$TMP/out" 2>"$TMP/err"; echo $?)"
expect_grep "cli show claim id" '^id: +claim$' "$TMP/out"
expect_eq "decide id claim" 200 "$(st POST /v1/queue/claim/decision '{"decision":"approve"}' "${A[@]}")"
expect_eq "decide id decisions" 200 "$(st POST /v1/queue/decisions/decision '{"decision":"approve"}' "${A[@]}")"
expect_eq "show decided claim" decided "$(st GET /v1/queue/claim "" "${A[@]}" >/dev/null; json state)"
expect_eq "put to claim" 405 "$(st PUT /v1/queue/claim '{}' "${A[@]}")"
expect_eq "put to claim: message" "/v1/queue/claim takes GET, POST, HEAD only" "$(json error.message)"

# an id percent-encoded in the path (encodeURIComponent: "wp%3A42") is
# decoded; what decodes to no valid id stays 404
expect_eq "submit wp:42" 200 "$(st POST /v1/comments '{"id":"wp:42","text":"an encoded id"}' -H "Authorization: Bearer $SUB")"
expect_eq "show encoded id" 200 "$(st GET /v1/queue/wp%3A42 "" "${A[@]}")"
expect_eq "encoded id shown" "wp:42" "$(json id)"
expect_eq "show lower-case escape" 200 "$(st GET /v1/queue/wp%3a42 "" "${A[@]}")"
expect_eq "encoded slash" 404 "$(st GET /v1/queue/wp%2F42 "" "${A[@]}")"
expect_eq "encoded space" 404 "$(st GET /v1/queue/wp%2042 "" "${A[@]}")"
expect_eq "bad escape" 404 "$(st GET /v1/queue/wp%3 "" "${A[@]}")"
expect_eq "decide encoded id" 200 "$(st POST /v1/queue/wp%3A42/decision '{"decision":"reject"}' "${A[@]}")"
expect_eq "undo encoded id" 200 "$(st POST /v1/queue/wp%3A42/undo "" "${A[@]}")"
expect_eq "encoded id in the queue" 200 "$(st GET /v1/queue/wp:42 "" "${A[@]}")"
expect_eq "encoded id undone" queued "$(json state)"

# HEAD wherever GET: the GET reply's headers, no body
for p in /v1/queue /v1/stats /v1/history /v1/queue/wp:42; do
    expect_eq "HEAD $p" "200 0" "$(curl -s -m 10 -I -o "$TMP/h" -w '%{http_code} %{size_download}' "${A[@]}" "$URL$p")"
    expect_grep "HEAD $p length" '^Content-Length: [1-9]' "$TMP/h"
done
expect_eq "HEAD without token" 401 "$(curl -s -m 10 -I -o /dev/null -w '%{http_code}' "$URL/v1/stats")"
expect_eq "HEAD on a POST route" 405 "$(curl -s -m 10 -I -o "$TMP/h" -w '%{http_code}' "${A[@]}" "$URL/v1/queue/wp:42/undo")"
expect_grep "HEAD on a POST route: Allow" '^Allow: POST' "$TMP/h"
curl -s -m 10 -o /dev/null -D "$TMP/h" -X PUT "${A[@]}" "$URL/v1/stats"
expect_grep "Allow names HEAD" '^Allow: GET, HEAD' "$TMP/h"
curl -s -m 10 -o /dev/null -D "$TMP/h" -d '{}' "${A[@]}" "$URL/v1/queue/wp:42"
expect_grep "item Allow names HEAD" '^Allow: GET, HEAD' "$TMP/h"
# other methods: the item's or its action's own, not the whole prefix's,
# and the message names that route
expect_eq "PUT on an item" 405 "$(curl -s -m 10 -o /dev/null -D "$TMP/h" -w '%{http_code}' -X PUT "${A[@]}" "$URL/v1/queue/wp:42")"
expect_grep "PUT on an item: Allow" '^Allow: GET, HEAD.$' "$TMP/h"
expect_eq "DELETE on an item" 405 "$(st DELETE /v1/queue/rep-1 "" "${A[@]}")"
expect_eq "DELETE on an item: message" "/v1/queue/{id} takes GET, HEAD only" "$(json error.message)"
curl -s -m 10 -o /dev/null -D "$TMP/h" -X DELETE "${A[@]}" "$URL/v1/queue/wp:42/decision"
expect_grep "DELETE on a decision: Allow" '^Allow: POST.$' "$TMP/h"
expect_eq "GET on a decision" 405 "$(st GET /v1/queue/wp:42/decision "" "${A[@]}")"
expect_eq "GET on a decision: message" "/v1/queue/{id}/decision takes POST only" "$(json error.message)"
expect_eq "GET on an undo: message" "/v1/queue/{id}/undo takes POST only" "$(st GET /v1/queue/wp:42/undo "" "${A[@]}" >/dev/null; json error.message)"
expect_eq "DELETE on an unknown action" 404 "$(st DELETE /v1/queue/wp:42/nope "" "${A[@]}")"

# bad decision bodies (timing-free here): JSON errors name their place as
# POST /v1/comments does, in a client's words
expect_eq "duplicate key" 400 "$(st POST /v1/queue/wp:42/decision '{"decision":"approve","decision":"reject"}' "${A[@]}")"
expect_eq "duplicate key message" "line 1, column 32: duplicate object key near '\"decision\"'" "$(json error.message)"
expect_eq "NUL in a decision" 400 "$(st POST /v1/queue/wp:42/decision '{"decision":"a\u0000"}' "${A[@]}")"
expect_eq "NUL message" 'line 1, column 21: \u0000 (a NUL character) is not allowed in strings' "$(json error.message)"
expect_eq "empty labels" 400 "$(st POST /v1/queue/wp:42/decision '{"decision":"reject","labels":{}}' "${A[@]}")"
expect_grep "empty labels message" '"labels\\" is empty' "$TMP/body"

stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
finish
