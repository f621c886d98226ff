#!/usr/bin/env bash
# The urgent order is kept only while it is needed (daemon/REDIS.md, "The
# urgent order"): a backlog queued under `oldest` writes no
# P queue:urgent; switching to `urgent` (SIGHUP, or a restart with
# --set) rebuilds it, and lists, cursors (also on a decided item) and
# claims then follow the records' highest scores, ties in reverse id
# order; decide and undo keep it; deleting the marker rebuilds it again.
source "$(dirname "$0")/lib.sh"
train_model
start_redis
SUB=submit-token-0123456789 MODA=alice-token-0123456789
sed 's/^order = .*/order = oldest/' "$CONF" > "$TMP/modfilterd.conf"
CONF="$TMP/modfilterd.conf"
DAEMON_ARGS=(--set server.workers=2 --set auth.submit_tokens="blog:$SUB"
    --set auth.moderator_tokens="alice:$MODA" --set queue.verdicts=allow,review,reject)
start_daemon "${DAEMON_ARGS[@]}"
A=(-H "Authorization: Bearer $MODA")
P=modfilter:
st() { local r; r=$(req "$@"); echo "${r%% *}"; }
ids() { python3 -c 'import json,sys; print(" ".join(i["id"] for i in json.load(open(sys.argv[1]))["items"]))' "$TMP/body"; }
# urgent_order [ID...]: the ids of P queue (or those given), most urgent
# first as the records say: the highest score, ties in reverse id order.
urgent_order() {
    local all=("$@") id
    [ $# -gt 0 ] || mapfile -t all < <(rcli ZRANGE "${P}queue" 0 -1)
    for id in "${all[@]}"; do
        printf '%s\t%s\n' "$id" "$(rcli HGET "${P}item:$id" record | tr '\t\n' '  ')"
    done | python3 -c '
import json, sys
rows = []
for line in sys.stdin:
    i, rec = line.rstrip("\n").split("\t", 1)
    s = [v for v in json.loads(rec)["scores"].values() if isinstance(v, float)]
    rows.append((max([0.0] + s), i))
print(" ".join(i for _, i in sorted(rows, reverse=True)))'
}
submit() { # id text
    expect_eq "submit $1" 200 "$(st POST /v1/comments "{\"id\":\"$1\",\"text\":\"$2\"}" -H "Authorization: Bearer $SUB")"
}

# A backlog under `oldest`: P queue only.  c4 and c5 have one text (a tie).
submit c1 "nice post, thanks for writing it"
submit c2 "Check out my channel for free iPhone http://bit.ly/x"
submit c3 "you are an idiot and your post is stupid"
submit c4 "subscribe to my channel please, I post every day"
submit c5 "subscribe to my channel please, I post every day"
submit c6 "Make money fast from home, visit www.easy-cash.example.com now"
submit c7 "I disagree with the second point"
expect_eq "queued" 7 "$(rcli ZCARD ${P}queue)"
expect_eq "no urgent set under oldest" 0 "$(rcli EXISTS ${P}queue:urgent ${P}queue:urgent:kept)"
expect_eq "a tie" "$(rcli HGET ${P}item:c4 record | python3 -c 'import json,sys; print(json.load(sys.stdin)["scores"])')" \
    "$(rcli HGET ${P}item:c5 record | python3 -c 'import json,sys; print(json.load(sys.stdin)["scores"])')"
ALL=$(urgent_order)
echo "urgent order by the records: $ALL"

# decide and undo under `oldest`: still no urgent set
expect_eq "decide c1 (oldest)" 200 "$(st POST /v1/queue/c1/decision '{"decision":"approve"}' "${A[@]}")"
expect_eq "undo c1 (oldest)" 200 "$(st POST /v1/queue/c1/undo "" "${A[@]}")"
expect_eq "oldest order" 200 "$(st GET /v1/queue "" "${A[@]}")"
expect_eq "oldest ids" "c1 c2 c3 c4 c5 c6 c7" "$(ids)"
expect_eq "still no urgent set" 0 "$(rcli EXISTS ${P}queue:urgent ${P}queue:urgent:kept)"
# a decided item for a cursor later (decided while the set is not kept)
CUR=$(echo "$ALL" | cut -d' ' -f3)
expect_eq "decide $CUR (oldest)" 200 "$(st POST /v1/queue/$CUR/decision '{"decision":"reject"}' "${A[@]}")"
QUEUED=$(for i in $ALL; do [ "$i" = "$CUR" ] || printf '%s ' "$i"; done); QUEUED=${QUEUED% }

# SIGHUP to `urgent`: the first list rebuilds, in one script
sed -i 's/^order = .*/order = urgent/' "$CONF"
kill -HUP "$DPID"
wait_for 10 grep -q "reloaded" "$DLOG" || echo "FAIL: no reload"
expect_eq "urgent list" 200 "$(st GET /v1/queue "" "${A[@]}")"
expect_eq "urgent ids" "$QUEUED" "$(ids)"
expect_eq "marker set" 1 "$(rcli EXISTS ${P}queue:urgent:kept)"
expect_eq "same members" 6 "$(rcli ZCARD ${P}queue:urgent)"
expect_eq "page 1" 200 "$(st GET '/v1/queue?limit=2' "" "${A[@]}")"
expect_eq "page 1 ids" "$(echo "$QUEUED" | cut -d' ' -f1-2)" "$(ids)"
expect_eq "page 2" 200 "$(st GET "/v1/queue?limit=2&cursor=$(json next_cursor)" "" "${A[@]}")"
expect_eq "page 2 ids" "$(echo "$QUEUED" | cut -d' ' -f3-4)" "$(ids)"
expect_eq "cursor on decided $CUR" 200 "$(st GET "/v1/queue?limit=3&cursor=$CUR" "" "${A[@]}")"
expect_eq "after decided $CUR" "$(echo "$ALL" | cut -d' ' -f4-6)" "$(ids)"

# decide and undo under `urgent`: out of the set, back with its score
TOP1=$(echo "$QUEUED" | cut -d' ' -f1)
SCORE=$(rcli ZSCORE ${P}queue:urgent "$TOP1")
expect_eq "decide $TOP1 (urgent)" 200 "$(st POST /v1/queue/$TOP1/decision '{"decision":"reject"}' "${A[@]}")"
expect_eq "out of the urgent set" "" "$(rcli ZSCORE ${P}queue:urgent "$TOP1")"
expect_eq "undo $TOP1 (urgent)" 200 "$(st POST /v1/queue/$TOP1/undo "" "${A[@]}")"
expect_eq "back with its score" "$SCORE" "$(rcli ZSCORE ${P}queue:urgent "$TOP1")"

# a comment submitted now goes into the kept set, with its record's score
submit c8 "free followers, visit http://followers.example.net today"
# (Redis writes the double as "%.17g"; Python reads both exactly)
top() { python3 -c 'import json,sys; print(repr(max([0.0] + [v for v in json.load(sys.stdin)["scores"].values() if isinstance(v, float)])))'; }
C8=$(rcli ZSCORE ${P}queue:urgent c8)
expect_eq "c8 in the urgent set, its record's score" "$(rcli HGET ${P}item:c8 record | top)" \
    "$(python3 -c "print(repr(float('${C8:-nan}')))")"
QUEUED=$(urgent_order)
expect_eq "list with c8" 200 "$(st GET /v1/queue "" "${A[@]}")"
expect_eq "ids with c8" "$QUEUED" "$(ids)"

# claims follow the urgent order
expect_eq "claim" 200 "$(st POST /v1/queue/claim '{"limit":3}' "${A[@]}")"
expect_eq "claimed" "$(echo "$QUEUED" | cut -d' ' -f1-3)" "$(ids)"

# the marker deleted: the set is left alone (here spoiled on purpose) and
# the next list rebuilds it
rcli DEL ${P}queue:urgent:kept >/dev/null
rcli ZADD ${P}queue:urgent 5 "$(echo "$QUEUED" | cut -d' ' -f7)" 7 stale >/dev/null
expect_eq "list rebuilds" 200 "$(st GET /v1/queue "" "${A[@]}")"
expect_eq "rebuilt ids" "$QUEUED" "$(ids)"
expect_eq "marker back" 1 "$(rcli EXISTS ${P}queue:urgent:kept)"
expect_eq "no stale member" "" "$(rcli ZSCORE ${P}queue:urgent stale)"

# a daemon started with `urgent` rebuilds when Redis is ready, before any
# moderator asks
stop_daemon
rcli DEL ${P}queue:urgent:kept ${P}queue:urgent >/dev/null
start_daemon "${DAEMON_ARGS[@]}" --set queue.order=urgent
wait_for 10 grep -q "rebuilt the urgent order: 7 queued" "$DLOG" || echo "FAIL: no rebuild at start"
expect_eq "kept from the start" "1 7" "$(rcli EXISTS ${P}queue:urgent:kept) $(rcli ZCARD ${P}queue:urgent)"
expect_eq "list after restart" 200 "$(st GET /v1/queue "" "${A[@]}")"
expect_eq "ids after restart" "$QUEUED" "$(ids)"
stop_daemon
expect_eq "clean stop" 0 "$STOP_RC"
finish
