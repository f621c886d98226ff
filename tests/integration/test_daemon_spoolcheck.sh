#!/usr/bin/env bash
# modfilterd -t with spool.path set: the directory exists or can be created,
# is writable by the account the daemon will run as, and its segments read
# back (records counted; torn or damaged records reported as warnings);
# "origin: spool.path: reason" and exit 1 when it would not start.
source "$(dirname "$0")/lib.sh"
train_model
SP="$TMP/spool"
chk() { # args...: exit status; output in $TMP/out
    "$BIN/modfilterd" -t -c "$CONF" --set model.path="$TMP/m.mfm" "$@" \
        >"$TMP/out" 2>&1
    echo $?
}

# missing, in a directory the daemon can create it in: fine, nothing made
expect_eq "missing spool" 0 "$(chk --set spool.path="$SP")"
expect_grep "missing spool message" "spool $SP: missing; the daemon will create it" "$TMP/out"
[ -e "$SP" ]; expect_eq "-t created nothing" 1 $?
expect_eq "missing parent" 1 "$(chk --set spool.path="$TMP/none/spool")"
expect_grep "missing parent message" \
    "^--set: spool.path: $TMP/none/spool is missing and cannot be created in $TMP/none: No such file" "$TMP/out"
touch "$TMP/file"
expect_eq "a file" 1 "$(chk --set spool.path="$TMP/file")"
expect_grep "a file message" "^--set: spool.path: $TMP/file: not a directory" "$TMP/out"
printf '[spool]\npath = %s\n' "$TMP/file" > "$TMP/c.conf"
"$BIN/modfilterd" -t -c "$TMP/c.conf" --set model.path="$TMP/m.mfm" >"$TMP/out" 2>&1
expect_eq "a file, from a config file" 1 $?
expect_grep "names the config line" "^$TMP/c.conf:2: spool.path: $TMP/file: not a directory" "$TMP/out"

# a spool with records (Redis away), checked while its daemon runs
REDIS_PORT=$(free_port)
start_daemon --set spool.path="$SP" --set queue.verdicts=allow,review,reject
for i in 1 2 3; do
    curl -s -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"id\":\"c$i\",\"text\":\"comment $i\"}" "$URL/v1/comments"
done
expect_eq "spool in use" 0 "$(chk --set spool.path="$SP")"
expect_grep "counts the backlog" "spool $SP: writable; 3 record\(s\), [0-9]+ bytes waiting for Redis; 0 damaged" "$TMP/out"
stop_daemon

# a torn record at the tail (a crash mid-write): a warning, still exit 0
seg=$(ls "$SP"/seg-*.spool | head -1)
printf '\365SR\000\377\377\000\000torn' >> "$seg"
expect_eq "torn tail" 0 "$(chk --set spool.path="$SP")"
expect_grep "torn tail warning" 'warning: spool .*: torn or damaged tail at offset' "$TMP/out"
expect_grep "torn tail counted" '3 record\(s\), [0-9]+ bytes waiting for Redis; 1 damaged or torn region\(s\) skipped \(warnings above\)' "$TMP/out"

# a state dir that cannot be listed (here: a file) stops -t, as it stops
# the start
: > "$TMP/statefile"
expect_eq "state dir a file" 1 "$(chk --set spool.path="$SP" --set model.state_dir="$TMP/statefile")"
expect_grep "state dir a file message" "^--set: model.state_dir: $TMP/statefile: not a directory" "$TMP/out"

# not writable by the account the daemon will run as
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    expect_eq "root-owned 0700 spool, server.user=nobody" 1 \
        "$(chk --set spool.path="$SP" --set server.user=nobody)"
    expect_grep "not writable message" \
        "^--set: spool.path: $SP: not writable by server.user nobody: Permission denied" "$TMP/out"
    chmod 755 "$TMP"; chown -R nobody "$SP" # nobody must reach it
    # model.state_dir is checked the same way: nobody writes snapshots
    expect_eq "root's state dir, server.user=nobody" 1 \
        "$(chk --set spool.path="$SP" --set server.user=nobody --set model.state_dir="$TMP/st")"
    expect_grep "state dir message" \
        "^--set: model.state_dir: $TMP/st is missing and cannot be created in $TMP by server.user nobody: Permission denied" "$TMP/out"
    mkdir "$TMP/st"; chown nobody "$TMP/st"
    expect_eq "nobody's spool, server.user=nobody" 0 \
        "$(chk --set spool.path="$SP" --set server.user=nobody --set model.state_dir="$TMP/st")"
    expect_grep "checked for nobody" "spool $SP: writable by nobody; 3 record" "$TMP/out"
    expect_eq "unknown server.user" 1 "$(chk --set spool.path="$SP" --set server.user=no-such-user-xyz --set model.state_dir="$TMP/st")"
    expect_grep "unknown server.user message" '^--set: server.user: no-such-user-xyz: no such user' "$TMP/out"
else
    chmod 500 "$SP"
    expect_eq "read-only spool" 1 "$(chk --set spool.path="$SP")"
    expect_grep "not writable message" "^--set: spool.path: $SP: not writable: Permission denied" "$TMP/out"
    chmod 700 "$SP"
fi
finish
