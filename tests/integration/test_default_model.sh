#!/usr/bin/env bash
# The committed default model (models/default.mfm), as make run and a fresh
# modfilterd use it: it loads, it has its two heads, and on comments written
# for a blog (tests/data/blog_comments.jsonl, in no training set) it lets
# most ordinary ones through and catches most spam.  A guard for `make
# model`: a rebuild that sends more ordinary comments to review, or lets
# more spam through, than the model of models/README.md fails here.
set -u
. "$(dirname "$0")/testlib.sh"
MF="$BIN/modfilter"
MODEL="$TOP/models/default.mfm"
BLOG="$TOP/tests/data/blog_comments.jsonl"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

"$MF" score --model "$MODEL" "$BLOG" >"$T/out" 2>"$T/err"
expect_eq "score exit" 0 $?
expect_eq "every comment scored" "$(wc -l <"$BLOG")" "$(wc -l <"$T/out")"

# counts: ordinary comments scored >= 0.5 for spam, spam ones caught, and
# any comment scored >= 0.5 for abuse (none of them is abusive)
read -r flagged caught abusive labels < <(python3 - "$BLOG" "$T/out" <<'PY'
import json, sys
truth = {}
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    truth[r["id"]] = r["labels"]["spam"]
flagged = caught = abusive = 0
labels = set()
for line in open(sys.argv[2], encoding="utf-8"):
    o = json.loads(line)
    labels.add(",".join(sorted(o["scores"])))
    spam = o["scores"]["spam"] >= 0.5
    flagged += spam and not truth[o["id"]]
    caught += spam and truth[o["id"]]
    abusive += o["scores"]["abuse"] >= 0.5
print(flagged, caught, abusive, "|".join(sorted(labels)))
PY
)
expect_eq "heads" "abuse,spam" "$labels"
# models/README.md: 5 of 36 and 11 of 13 (26 Nov); one more either way
# is within what a retrain on other data may move
[ "$flagged" -le 6 ]; expect_eq "ordinary comments sent to review ($flagged of 36)" 0 $?
[ "$caught" -ge 10 ]; expect_eq "spam caught ($caught of 13)" 0 $?
expect_eq "ordinary comments taken for abuse" 0 "$abusive"

# what a clear case looks like, through explain
"$MF" explain --model "$MODEL" "you are a fucking idiot" >"$T/ab" 2>&1
expect_grep "an insult is abuse" "^abuse +0\.[5-9]|^abuse +1\.0" "$T/ab"
"$MF" explain --model "$MODEL" \
    "Check out my channel, subscribe please! http://bit.ly/x" >"$T/sp" 2>&1
expect_grep "a channel plug is spam" "^spam +0\.9|^spam +1\.0" "$T/sp"
finish
