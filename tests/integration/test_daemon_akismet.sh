#!/usr/bin/env bash
# The Akismet API 1.1 against a real Redis: every endpoint, the key in a
# field and in the Host name, the documented test triggers, sloppy bodies
# (odd content types, Latin-1, repeated and unknown fields), the queued
# record with its Akismet fields, training events, 503 without Redis, 404
# without keys, a key sent as a bearer token (401); then a client driving
# it as an Akismet library does (akismet_client.py, Python's urllib).
source "$(dirname "$0")/lib.sh"
train_model
start_redis
KEY=abcdef123456 BLOG=https://blog.example
printf '# blogs\n\nhttp://other.example:8080:otherkey9876\n' > "$TMP/keys"

# ak PATH BODY [curl args]: POST a form; "STATUS BODY"; headers in $TMP/h.
ak() {
    local path=$1 body=$2; shift 2
    local st
    st=$(curl -s -m 10 -D "$TMP/h" -o "$TMP/body" -w '%{http_code}' \
        --data-binary "$body" "$@" "$URL$path")
    echo "$st $(cat "$TMP/body")"
}
hdr() { grep -i "^$1:" "$TMP/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
record() { rcli HGET "modfilter:item:$1" record > "$TMP/body"; }
C="blog=$BLOG&user_ip=192.0.2.7"

# ---- no keys: the endpoints are off --------------------------------------
start_daemon --set model.state_dir="$TMP/state"
for p in /1.1/verify-key /1.1/comment-check /1.2/usage-limit; do
    r=$(ak "$p" "key=$KEY&$C"); expect_eq "no keys $p" 404 "${r%% *}"
done
expect_eq "no keys: JSON error" not_found "$(json error.code)"
stop_daemon

start_daemon --set model.state_dir="$TMP/state" --set server.workers=2 \
    --set akismet.keys="$BLOG:$KEY" --set akismet.keys_file="$TMP/keys"
# Redis-backed answers need the workers' connections up (start_daemon
# waits for them; the test fails if they never come).
wait_for 10 curl -sf "$URL/readyz" || { echo "FAIL: not ready"; FAILS=$((FAILS+1)); }

# an Akismet key is no bearer token: 401 as an unknown token, not 403
r=$(req GET /v1/stats "" -H "Authorization: Bearer $KEY"); expect_eq "key as bearer token" 401 "${r%% *}"
expect_eq "key as bearer: unknown" unauthorized "$(json error.code)"

# ---- verify-key ----------------------------------------------------------
r=$(ak /1.1/verify-key "key=$KEY&blog=$BLOG"); expect_eq "verify key" "200 valid" "$r"
r=$(ak /1.1/verify-key "api_key=$KEY&blog=$BLOG"); expect_eq "verify api_key" "200 valid" "$r"
r=$(ak /1.1/verify-key "key=otherkey9876&blog=x"); expect_eq "verify key from file" "200 valid" "$r"
r=$(ak /1.1/verify-key "key=abcdef123457&blog=$BLOG"); expect_eq "verify wrong key" "200 invalid" "$r"
expect_eq "wrong key help" "Invalid API key." "$(hdr X-akismet-debug-help)"
r=$(ak /1.1/verify-key "blog=$BLOG"); expect_eq "verify no key" "200 invalid" "$r"
expect_grep "no key help" 'X-akismet-debug-help: Empty "api_key" value' "$TMP/h"
r=$(ak /1.1/verify-key "blog=$BLOG" -H "Host: $KEY.localhost"); expect_eq "verify Host key" "200 valid" "$r"
r=$(ak /1.1/verify-key "blog=$BLOG" -H "Host: nosuchkey1.localhost"); expect_eq "verify Host unknown" "200 invalid" "$r"
r=$(ak /1.1/verify-key "blog=$BLOG" -H "Host: $KEY"); expect_eq "verify Host without dot" "200 invalid" "$r"

# ---- comment-check: the test triggers -------------------------------------
r=$(ak /1.1/comment-check "key=$KEY&$C&comment_author=viagra-test-123&comment_content=hello+there")
expect_eq "viagra-test-123" "200 true" "$r"
guid=$(hdr X-akismet-guid)
[ -n "$guid" ] || { echo "FAIL: no X-akismet-guid"; FAILS=$((FAILS+1)); }
expect_eq "trigger queued" true "$(hdr X-modfilter-queued)"
expect_eq "trigger item in Redis" 1 "$(rcli ZSCORE modfilter:queue "$guid" | grep -c .)"
r=$(ak /1.1/comment-check "key=$KEY&$C&comment_author=akismet-guaranteed-spam&comment_content=hi")
expect_eq "akismet-guaranteed-spam" "200 true" "$r"
r=$(ak /1.1/comment-check "key=$KEY&$C&comment_author_email=akismet-guaranteed-spam%40example.com&comment_content=hi")
expect_eq "guaranteed-spam e-mail" "200 true" "$r"
r=$(ak /1.1/comment-check "key=$KEY&$C&user_role=administrator&comment_content=Check+out+my+channel+http%3A%2F%2Fbit.ly%2Fx")
expect_eq "administrator" "200 false" "$r"
expect_eq "administrator: no pro-tip" "" "$(hdr X-akismet-pro-tip)"
expect_eq "administrator: not queued" false "$(hdr X-modfilter-queued)"
expect_eq "administrator: no item" 0 "$(rcli EXISTS "modfilter:item:$(hdr X-akismet-guid)")"
n=$(rcli ZCARD modfilter:queue)
for t in 1 true; do
    r=$(ak /1.1/comment-check "key=$KEY&$C&comment_author=viagra-test-123&comment_content=x&is_test=$t")
    expect_eq "is_test=$t answers" "200 true" "$r"
    expect_eq "is_test=$t not queued" false "$(hdr X-modfilter-queued)"
done
expect_eq "is_test queues nothing" "$n" "$(rcli ZCARD modfilter:queue)"

# reject: the pro-tip; a plain review: none
r=$(ak /1.1/comment-check "key=$KEY&$C&comment_content=Check+out+my+channel+for+free+iPhone+http%3A%2F%2Fbit.ly%2Fx")
expect_eq "spam text" "200 true" "$r"
expect_eq "reject verdict" reject "$(hdr X-modfilter-verdict)"
expect_eq "reject pro-tip" discard "$(hdr X-akismet-pro-tip)"
r=$(ak /1.1/comment-check "key=$KEY&$C&comment_author=viagra-test-123&comment_content=hello+there")
expect_eq "review verdict" review "$(hdr X-modfilter-verdict)"
expect_eq "review: no pro-tip" "" "$(hdr X-akismet-pro-tip)"

# ---- the stored record keeps every Akismet field --------------------------
body="api_key=$KEY&blog=$BLOG&user_ip=198.51.100.9&user_agent=Mozilla%2F5.0+(X11)&referrer=https%3A%2F%2Fref.example%2F"
body+="&permalink=https%3A%2F%2Fblog.example%2Fpost-1&comment_type=comment&comment_author=First&comment_author=Ann+Example"
body+="&comment_author_email=ann%40example.com&comment_author_url=https%3A%2F%2Fann.example&comment_content=Buy+cheap+pills+now"
body+="&comment_date_gmt=2026-01-02T03%3A04%3A05Z&comment_post_modified_gmt=2026-01-01T00%3A00%3A00Z&blog_lang=es"
body+="&blog_charset=UTF-8&user_role=subscriber&recheck_reason=edit&x_custom=kept&HTTP_ACCEPT=text%2Fhtml"
r=$(ak /1.1/comment-check "$body"); expect_eq "full comment" "200 true" "$r"
guid=$(hdr X-akismet-guid)
record "$guid"
expect_eq "record id = guid" "$guid" "$(json id)"
expect_eq "record text" "Buy cheap pills now" "$(json text)"
expect_eq "record source" akismet "$(json source)"
expect_eq "author.name (repeated: last wins)" "Ann Example" "$(json author.name)"
expect_eq "author.email" ann@example.com "$(json author.email)"
expect_eq "author.url" https://ann.example "$(json author.url)"
expect_eq "author.ip" 198.51.100.9 "$(json author.ip)"
expect_eq "post = permalink" https://blog.example/post-1 "$(json post)"
# blog_lang is the blog's language, not the comment's: detection decides
expect_eq "no lang hint from blog_lang" null "$(json lang_hint)"
expect_eq "an English comment on a Spanish blog" en "$(json lang)"
for f in blog user_ip user_agent referrer permalink comment_type comment_author comment_author_email \
         comment_author_url comment_content comment_date_gmt comment_post_modified_gmt blog_lang \
         blog_charset user_role recheck_reason x_custom HTTP_ACCEPT; do
    v=$(json "akismet.$f"); [ -n "$v" ] && [ "$v" != null ] || { echo "FAIL: record lacks akismet.$f"; FAILS=$((FAILS+1)); }
done
expect_eq "akismet.user_agent" "Mozilla/5.0 (X11)" "$(json akismet.user_agent)"
expect_eq "no key in the record" null "$(json akismet.api_key)"
if grep -q "$KEY" "$TMP/body"; then echo "FAIL: the key is in the record"; FAILS=$((FAILS+1)); fi
# post falls back to blog without a permalink
r=$(ak /1.1/comment-check "key=$KEY&$C&comment_content=spam+spam+http%3A%2F%2Fx.example"); record "$(hdr X-akismet-guid)"
expect_eq "post = blog" "$BLOG" "$(json post)"

# ---- request errors -------------------------------------------------------
r=$(ak /1.1/comment-check "key=wrongkey12345&$C&comment_content=x"); expect_eq "check wrong key" "200 invalid" "$r"
r=$(ak /1.1/comment-check "key=$KEY&user_ip=1.2.3.4&comment_content=x"); expect_eq "check no blog" "200 invalid" "$r"
expect_eq "no blog help" 'Empty "blog" value' "$(hdr X-akismet-debug-help)"
r=$(ak /1.1/comment-check "key=$KEY&blog=$BLOG&comment_content=x"); expect_eq "check no user_ip" "200 invalid" "$r"
expect_eq "no user_ip help" 'Empty "user_ip" value' "$(hdr X-akismet-debug-help)"
r=$(ak /1.1/comment-check "key=$KEY&blog=$BLOG&user_ip=&comment_content=x"); expect_eq "check empty user_ip" "200 invalid" "$r"
r=$(ak /1.1/nope "key=$KEY"); expect_eq "unknown endpoint" 404 "${r%% *}"
r=$(curl -s -o /dev/null -D "$TMP/h" -w '%{http_code}' "$URL/1.1/comment-check?key=$KEY")
expect_eq "GET comment-check" 405 "$r"; expect_eq "405 Allow" POST "$(hdr Allow)"
# every method an Akismet path does not take gets the same plain 405, with
# that path's own methods
for m in PUT DELETE PATCH; do
    r=$(curl -s -o "$TMP/body" -D "$TMP/h" -w '%{http_code}' -X "$m" "$URL/1.1/comment-check?key=$KEY")
    expect_eq "$m comment-check" "405 method not allowed" "$r $(cat "$TMP/body")"
    expect_eq "$m comment-check: Allow" POST "$(hdr Allow)"
    expect_eq "$m comment-check: help" "/1.1/comment-check takes POST only" "$(hdr X-akismet-debug-help)"
    expect_grep "$m comment-check: plain text" '^Content-Type: text/plain' "$TMP/h"
done
r=$(curl -s -o /dev/null -D "$TMP/h" -w '%{http_code}' -X PUT "$URL/1.2/usage-limit?key=$KEY")
expect_eq "PUT usage-limit" 405 "$r"; expect_eq "usage-limit Allow" "GET, POST, HEAD" "$(hdr Allow)"
r=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$URL/1.1/nope?key=$KEY"); expect_eq "PUT unknown endpoint" 404 "$r"
python3 -c "print('key=$KEY&$C&comment_content=' + 'x' * 70000)" > "$TMP/big"
r=$(ak /1.1/comment-check "@$TMP/big"); expect_eq "too large" 413 "${r%% *}"
expect_grep "too large help" 'X-akismet-debug-help: The body is' "$TMP/h"

# ---- sloppy clients: whatever Content-Type, Latin-1, Host key ---------------
for ct in 'Content-Type:' 'Content-Type: charset=utf-8' 'Content-Type: application/json' \
          'Content-Type: text/plain; charset=UTF-8' 'Content-Type: multipart/weird'; do
    r=$(ak /1.1/comment-check "key=$KEY&$C&comment_author=viagra-test-123&comment_content=x&is_test=1" -H "$ct")
    expect_eq "body with [$ct]" "200 true" "$r"
done
r=$(ak /1.1/comment-check "key=$KEY&$C&comment_content=Caf%E9+barato+%BFs%ED%3F+http%3A%2F%2Fspam.example&blog_charset=ISO-8859-1")
record "$(hdr X-akismet-guid)"
expect_eq "Latin-1 converted" "Café barato ¿sí? http://spam.example" "$(json text)"
r=$(ak /1.1/comment-check "key=$KEY&$C&comment_content=ni%F1o+http%3A%2F%2Fspam.example" \
    -H 'Content-Type: application/x-www-form-urlencoded; charset=ISO-8859-1')
record "$(hdr X-akismet-guid)"
expect_eq "Latin-1 from Content-Type" "niño http://spam.example" "$(json text)"
r=$(ak /1.1/comment-check "$C&comment_author=viagra-test-123&comment_content=x&is_test=1" -H "Host: $KEY.rest.example")
expect_eq "check with Host key" "200 true" "$r"

# ---- usage-limit -----------------------------------------------------------
want='{"limit":"none","usage":0,"percentage":"0.00","throttled":false}'
r=$(curl -s "$URL/1.2/usage-limit?api_key=$KEY"); expect_eq "usage-limit GET" "$want" "$r"
r=$(curl -s -I -o /dev/null -w '%{http_code}' "$URL/1.2/usage-limit?api_key=$KEY"); expect_eq "usage-limit HEAD" 200 "$r"
r=$(ak /1.2/usage-limit "api_key=$KEY"); expect_eq "usage-limit POST" "200 $want" "$r"
r=$(ak /1.2/usage-limit "api_key=nope12345"); expect_eq "usage-limit wrong key" "200 invalid" "$r"

# ---- submit-spam / submit-ham: training events ------------------------------
thanks="Thanks for making the web a better place."
r=$(ak /1.1/submit-spam "key=$KEY&$C&comment_content=cheap+pills+here&blog_lang=es_MX"); expect_eq "submit-spam" "200 $thanks" "$r"
r=$(ak /1.1/submit-ham "$C&comment_content=lovely+post" -H "Host: $KEY.localhost"); expect_eq "submit-ham" "200 $thanks" "$r"
expect_eq "two training events" 2 "$(rcli XLEN modfilter:training)"
rcli --no-raw XRANGE modfilter:training - + > "$TMP/xr"
expect_grep "spam event" '"cheap pills here"' "$TMP/xr"
expect_grep "spam labels" '"\{\\"spam\\":1\}"' "$TMP/xr"
expect_grep "ham labels" '"\{\\"spam\\":0\}"' "$TMP/xr"
expect_grep "event source" '"akismet"' "$TMP/xr"
# no lang from blog_lang=es_MX: the learner detects the comment's own
! grep -q '"es"' "$TMP/xr" || { echo "FAIL: event lang from blog_lang"; FAILS=$((FAILS+1)); }
expect_grep "event by" "\"$BLOG\"" "$TMP/xr"
r=$(ak /1.1/submit-spam "key=$KEY&$C&comment_content=x&is_test=1"); expect_eq "submit is_test" "200 $thanks" "$r"
r=$(ak /1.1/submit-spam "key=nokey12345&$C&comment_content=x"); expect_eq "submit wrong key" "200 invalid" "$r"
r=$(ak /1.1/submit-ham "key=$KEY&user_ip=1.2.3.4&comment_content=x"); expect_eq "submit no blog" "200 invalid" "$r"
expect_eq "no event for those" 2 "$(rcli XLEN modfilter:training)"
applied() { curl -s "$URL/metrics" | grep -qE '^modfilter_training_events_total\{source="akismet"\} 2$'; }
wait_for 5 applied || { echo "FAIL: the learner did not apply the akismet events"; FAILS=$((FAILS+1)); }

curl -s "$URL/metrics" > "$TMP/metrics"
expect_grep "akismet metrics" '^modfilter_requests_total\{route="akismet",status="200"\} [1-9]' "$TMP/metrics"
if grep -q "$KEY" "$DLOG"; then echo "FAIL: the key is in the log"; FAILS=$((FAILS+1)); fi

# ---- a client library's view ------------------------------------------------
python3 "$TOP/tests/integration/akismet_client.py" "$URL" "$KEY" "$BLOG" \
    || { echo "FAIL: akismet_client.py"; FAILS=$((FAILS+1)); }

# ---- Redis down: 503 for what needs it, verify-key still answers -------------
stop_redis
r=$(ak /1.1/comment-check "key=$KEY&$C&comment_content=Check+out+http%3A%2F%2Fbit.ly%2Fx")
expect_eq "check without Redis" 503 "${r%% *}"; expect_eq "Retry-After" 2 "$(hdr Retry-After)"
r=$(ak /1.1/submit-spam "key=$KEY&$C&comment_content=x"); expect_eq "submit without Redis" 503 "${r%% *}"
r=$(ak /1.1/comment-check "key=$KEY&$C&comment_author=viagra-test-123&comment_content=x&is_test=1")
expect_eq "is_test without Redis" "200 true" "$r"
r=$(ak /1.1/verify-key "key=$KEY&blog=$BLOG"); expect_eq "verify without Redis" "200 valid" "$r"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"

# ---- akismet.train = no; akismet.labels ---------------------------------------
start_redis
start_daemon --set model.state_dir="$TMP/state" --set akismet.keys="$BLOG:$KEY" --set akismet.train=no
wait_for 10 curl -sf "$URL/readyz" || { echo "FAIL: not ready"; FAILS=$((FAILS+1)); }
r=$(ak /1.1/submit-spam "key=$KEY&$C&comment_content=x+y"); expect_eq "train=no thanks" "200 $thanks" "$r"
expect_eq "train=no records nothing" 0 "$(rcli XLEN modfilter:training)"
stop_daemon
start_daemon --set model.state_dir="$TMP/state" --set akismet.keys="$BLOG:$KEY" --set akismet.labels=spam,abuse
wait_for 10 curl -sf "$URL/readyz" || { echo "FAIL: not ready"; FAILS=$((FAILS+1)); }
r=$(ak /1.1/submit-spam "key=$KEY&$C&comment_content=you+idiot+buy+now"); expect_eq "labels thanks" "200 $thanks" "$r"
rcli --no-raw XRANGE modfilter:training - + > "$TMP/xr"
expect_grep "spam and abuse" '"\{\\"abuse\\":1,\\"spam\\":1\}"' "$TMP/xr"
stop_daemon
"$BIN/modfilterd" -t -c "$CONF" --set model.path="$TMP/m.mfm" --set akismet.keys="x:short" > "$TMP/t" 2>&1
rc=$?; [ "$rc" -ne 0 ] || { echo "FAIL: modfilterd -t took a short key"; FAILS=$((FAILS+1)); }
expect_grep "bad key message" 'akismet.keys: the key of x must be' "$TMP/t"
finish
