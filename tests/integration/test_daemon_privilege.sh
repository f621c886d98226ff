#!/usr/bin/env bash
# Least privilege: started as root with server.user set, the daemon binds,
# then serves as that account (and its group) with no root warning; as root
# without it, it warns in the log and in /readyz.  Skipped when not root.
source "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
    echo "skipped: needs root and the nobody account"; finish
fi
train_model
start_redis
# the account must reach the model (read at reloads) and the state dir
chmod 755 "$TMP"; chmod 644 "$TMP/m.mfm"
mkdir -p "$TMP/state"; chown nobody "$TMP/state"

start_daemon --set server.user=nobody --set model.state_dir="$TMP/state"
uid=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$DPID/status")
gid=$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$DPID/status")
nu=$(id -u nobody); ng=$(id -g nobody)
expect_eq "serves as nobody (real, effective, saved, fs uid)" "$nu $nu $nu $nu" "$uid"
expect_eq "with nobody's group" "$ng $ng $ng $ng" "$gid"
expect_eq "no supplementary groups of root" "$ng" "$(awk '/^Groups:/ {print $2}' "/proc/$DPID/status")"
curl -s "$URL/readyz" >"$TMP/ready"
expect_grep "ready" '"ready":true' "$TMP/ready"
if grep -q "running as root" "$TMP/ready"; then expect_eq "no root warning" none found; fi
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"text":"hello"}' "$URL/v1/score")
expect_eq "scores as nobody" 200 "$code"
kill -HUP "$DPID"; sleep 0.5
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")
expect_eq "reload as nobody keeps serving" 200 "$code"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
expect_grep "log says so" "switched to user nobody" "$DLOG"

# as root without server.user: a warning in the log and in /readyz
: >"$DLOG"
start_daemon
curl -s "$URL/readyz" >"$TMP/ready"
expect_grep "readyz warns" 'running as root' "$TMP/ready"
expect_grep "log warns" 'running as root' "$DLOG"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"

# an unknown account stops start-up
"$BIN/modfilterd" -t -c "$CONF" --set model.path="$TMP/m.mfm" --set server.user=no-such-user-xyz \
    >/dev/null 2>"$TMP/err"
rc=$?
if [ "$rc" = 0 ]; then
    # -t may not check accounts: the real start must refuse
    rm -f "$TMP/port"
    timeout 10 "$BIN/modfilterd" -f -c "$CONF" --set model.path="$TMP/m.mfm" \
        --set server.listen=127.0.0.1:0 --set server.port_file="$TMP/port" \
        --set redis.url="redis://127.0.0.1:$REDIS_PORT/0" --set spool.path= \
        --set server.user=no-such-user-xyz >/dev/null 2>"$TMP/err"
    rc=$?
fi
expect_eq "unknown account refused" 1 "$rc"
expect_grep "unknown account message" 'no-such-user-xyz' "$TMP/err"
finish
