#!/usr/bin/env bash
# modfilter train / forget / score / explain / eval from the command line:
# outputs, exit codes and error messages.
set -u
. "$(dirname "$0")/testlib.sh"
MF="$BIN/modfilter"
DATA="$TOP/tests/data/tiny.jsonl"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# train
"$MF" train --model "$T/m.mfm" --prior abuse=0.2 "$DATA" 2>"$T/err"
expect_eq "train exit" 0 $?
expect_grep "train summary" "48 learned" "$T/err"
expect_grep "prior in summary" "abuse: 12 positive, 12 negative, prior 0.200" "$T/err"
[ -s "$T/m.mfm" ]; expect_eq "model written" 0 $?
ls "$T"/m.mfm.tmp.* >/dev/null 2>&1; expect_eq "no temp file left" 2 $?

# a head with one class only has no calibration, and says so
printf '{"text":"hello there","labels":{"spam":0}}\n' >"$T/one.jsonl"
"$MF" train --model "$T/one.mfm" "$T/one.jsonl" 2>"$T/err"
expect_grep "one-class head" "spam: 0 positive, 1 negative, prior 0.000, no calibration \\(too few examples of a class\\)" "$T/err"

# the same data again on top: all duplicates
"$MF" train --model "$T/m2.mfm" --from "$T/m.mfm" "$DATA" 2>"$T/err"
expect_grep "retrain is idempotent" "0 learned, 48 duplicates" "$T/err"

# score: one line per valid input line, every head, in order
printf '%s\n' '{"id":"a","text":"check out my channel http://bit.ly/x"}' \
    'not json' '{"id":"b"}' '{"id":"c","text":"you stupid idiot"}' \
    '{"id":"d","text":"thanks, lovely post","lang":"en"}' >"$T/in.jsonl"
"$MF" score --model "$T/m.mfm" "$T/in.jsonl" >"$T/out" 2>"$T/err"
expect_eq "score exit" 0 $?
expect_eq "score lines" 3 "$(wc -l <"$T/out")"
expect_eq "score order" "a c d" "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["id"] for l in open(sys.argv[1])))' "$T/out")"
python3 - "$T/out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    assert set(r["scores"]) == {"spam", "abuse"}, r
    assert all(0 <= v <= 1 for v in r["scores"].values()), r
    assert r["verdict"] in ("allow", "review", "reject"), r
    assert isinstance(r["unsure"], list) and "lang" in r, r
    assert "reasons" not in r
assert rows[0]["scores"]["spam"] > rows[2]["scores"]["spam"], rows
assert rows[1]["scores"]["abuse"] > rows[2]["scores"]["abuse"], rows
PY
expect_eq "score fields" 0 $?
expect_grep "invalid line reported" "in.jsonl:2: invalid JSON" "$T/err"
expect_grep "missing text reported" "in.jsonl:3: \"text\" missing" "$T/err"

# --strict stops at the first invalid line
"$MF" score --model "$T/m.mfm" --strict "$T/in.jsonl" >"$T/out" 2>/dev/null
expect_eq "strict exit" 1 $?
expect_eq "strict stops" 1 "$(wc -l <"$T/out")"

# reasons, stdin, thresholds
echo '{"id":"r","text":"check out my channel"}' |
    "$MF" score --model "$T/m.mfm" --reasons --set thresholds.review=0 \
        --set thresholds.reject=0 - >"$T/out"
expect_grep "reasons present" '"reasons":\{.*"spam":\[\{"feature":"' "$T/out"
expect_grep "threshold override" '"verdict":"reject"' "$T/out"
printf '[thresholds]\nreview = 1\nreject = 1\n' >"$T/t.conf"
echo '{"id":"r","text":"a nice day"}' |
    "$MF" score --model "$T/m.mfm" -c "$T/t.conf" - >"$T/out"
expect_grep "thresholds from -c" '"verdict":"' "$T/out"
"$MF" score --model "$T/m.mfm" --set thresholds.review=2 - </dev/null 2>/dev/null
expect_eq "bad threshold is a usage error" 2 $?
"$MF" score --model "$T/m.mfm" --set thresholds.spam_reject=0.2 - </dev/null 2>"$T/err"
expect_eq "review above reject is refused (exit 1, as modfilterd -t)" 1 $?
expect_grep "review above reject message" "review threshold" "$T/err"
"$MF" score --model "$T/m.mfm" --set thresholds.spma_reject=0.99 - </dev/null 2>"$T/err"
expect_eq "threshold of a label the model lacks" 1 $?
expect_grep "threshold of a label the model lacks: why" 'thresholds.spma_reject: unknown label "spma"' "$T/err"

# explain
"$MF" explain --model "$T/m.mfm" "you stupid idiot" >"$T/out"
expect_eq "explain exit" 0 $?
expect_grep "explain verdict" "^verdict: " "$T/out"
expect_grep "explain abuse line" "^abuse " "$T/out"

# forget everything that was learned
"$MF" forget --model "$T/f.mfm" --from "$T/m.mfm" "$DATA" 2>"$T/err"
expect_grep "forget" "48 forgotten" "$T/err"

# eval
python3 -c '
import json,sys
for i,l in enumerate(open(sys.argv[1])):
    print("%s\t%d" % (json.loads(l)["id"], i % 3))' "$DATA" >"$T/folds.tsv"
"$MF" eval --folds "$T/folds.tsv" --label spam "$DATA" >"$T/out"
expect_eq "eval exit" 0 $?
expect_eq "eval folds" 3 "$(grep -c '^fold' "$T/out")"
expect_grep "eval mean" "^mean auc=" "$T/out"

# invalid training lines: file:line: reason, and nothing of them learned
printf '%s\n' '{"text":"hello"}' '{"text":"hi there","labels":{"Spam":1}}' \
    '{"text":"hello there","labels":{"spam":1,"Abuse":1}}' \
    '{"text":"good morning","labels":{"spam":0}}' \
    '{"text":"","labels":{"spam":1}}' >"$T/inv.jsonl"
"$MF" train --model "$T/inv.mfm" "$T/inv.jsonl" 2>"$T/err"
expect_eq "train with invalid lines exit" 0 $?
expect_grep "no labels: file:line" "inv.jsonl:1: a record without labels" "$T/err"
expect_grep "bad label: file:line" "inv.jsonl:2: bad label name 'Spam'" "$T/err"
expect_grep "a bad label among good ones: file:line" "inv.jsonl:3: bad label name 'Abuse'" "$T/err"
expect_grep "empty text: file:line" "inv.jsonl:5: an empty text" "$T/err"
expect_grep "an invalid line is not half-learned" "1 learned, 0 duplicates, 4 invalid" "$T/err"
"$MF" forget --model "$T/inv2.mfm" --from "$T/m.mfm" "$T/inv.jsonl" 2>"$T/err"
expect_grep "forget: file:line" "inv.jsonl:3: bad label name 'Abuse'" "$T/err"
"$MF" train --strict --model "$T/inv.mfm" "$T/inv.jsonl" 2>/dev/null
expect_eq "train --strict on an invalid line" 1 $?

# a byte order mark and \u0000 in a text are taken
printf '\xef\xbb\xbf{"id":"bom","text":"hello\\u0000world","labels":{"spam":0}}\n' >"$T/bom.jsonl"
"$MF" train --model "$T/bom.mfm" "$T/bom.jsonl" 2>"$T/err"
expect_grep "BOM and NUL: learned" "1 learned, 0 duplicates, 0 invalid" "$T/err"
"$MF" score --strict --model "$T/m.mfm" "$T/bom.jsonl" >"$T/out"
expect_eq "BOM and NUL: scored" 0 $?
cmp -s <(sed 's/"id":"bom"//' "$T/out") <(echo '{"id":"bom","text":"hello world"}' |
    "$MF" score --model "$T/m.mfm" - | sed 's/"id":"bom"//')
expect_eq "NUL scores as a space" 0 $?
printf '{"id":"a\\u0000b","text":"x"}\n' | "$MF" score --model "$T/m.mfm" - 2>"$T/err" >/dev/null
expect_grep "NUL in an id refused" "-:1: .u0000 in \"id\"" "$T/err"

# --from keeps the base model's settings: settings flags are usage errors
"$MF" train --model "$T/x.mfm" --from "$T/m.mfm" --languages english "$DATA" 2>"$T/err"
expect_eq "--from with --languages" 2 $?
expect_grep "--from with --languages message" "--languages cannot change the settings of a --from model" "$T/err"
"$MF" train --model "$T/x.mfm" --from "$T/m.mfm" --max-bytes 100 "$DATA" 2>/dev/null
expect_eq "--from with --max-bytes" 2 $?
"$MF" train --model "$T/x.mfm" --from "$T/m.mfm" --prior spam=0.3 "$DATA" 2>/dev/null
expect_eq "--from with --prior" 0 $?

# eval: a label no record carries, a bad label, more than 256 folds
"$MF" eval --folds "$T/folds.tsv" --label nolabel "$DATA" >/dev/null 2>"$T/err"
expect_eq "eval with a label no record has" 1 $?
expect_grep "eval label message" "no record carries the label nolabel" "$T/err"
"$MF" eval --folds "$T/folds.tsv" --label Spam "$DATA" >/dev/null 2>&1
expect_eq "eval with a bad label name" 2 $?
python3 - "$T" <<'PY'
import json, sys
d = sys.argv[1]
with open(d + "/many.jsonl", "w") as f, open(d + "/many.tsv", "w") as g:
    for i in range(600):
        f.write(json.dumps({"id": "m%d" % i, "text": "word%d %s" % (i, "buy now" if i % 2 else "nice song"),
                            "labels": {"spam": i % 2}}) + "\n")
        g.write("m%d\t%03d\n" % (i, i // 2))
PY
"$MF" eval --folds "$T/many.tsv" --label spam "$T/many.jsonl" >"$T/out" 2>"$T/err"
expect_eq "eval with 300 folds" 0 $?
expect_eq "eval tests every fold" 300 "$(grep -c '^fold' "$T/out")"

# export: the newest snapshot of a base from a daemon's state directory
"$MF" train --model "$T/m.mfm" --prior abuse=0.2 "$DATA" 2>"$T/err"
id=$(sed -n 's/.*model id \([0-9a-f]*\)$/\1/p' "$T/err")
expect_eq "model id printed" 16 "${#id}"
mkdir "$T/state"
cp "$T/f.mfm" "$T/state/learned-$id-1700000000000-7.mfm"
cp "$T/m2.mfm" "$T/state/learned-$id-1700000000001-0.mfm"
cp "$T/f.mfm" "$T/state/learned-0123456789abcdef-1800000000000-0.mfm"
echo junk >"$T/state/learned-$id-x.mfm"
"$MF" export --state-dir "$T/state" --base "$T/m.mfm" --model "$T/exp.mfm" 2>"$T/err"
expect_eq "export exit" 0 $?
expect_grep "export picks the newest of the base" "learned-$id-1700000000001-0.mfm" "$T/err"
cmp -s <("$MF" score --model "$T/exp.mfm" "$T/in.jsonl" 2>/dev/null) \
    <("$MF" score --model "$T/m2.mfm" "$T/in.jsonl" 2>/dev/null)
expect_eq "exported model scores as the snapshot" 0 $?
"$MF" export --state-dir "$T/state" --base "$T/bad.mfm" --model "$T/x.mfm" 2>/dev/null
expect_eq "export with a bad base" 1 $?
"$MF" export --state-dir "$T/nonexistent" --model "$T/x.mfm" 2>/dev/null
expect_eq "export without a state dir" 1 $?
"$MF" export --model "$T/x.mfm" 2>/dev/null
expect_eq "export usage" 2 $?

# errors
"$MF" >/dev/null 2>&1; expect_eq "no command" 2 $?
"$MF" frobnicate >/dev/null 2>&1; expect_eq "unknown command" 2 $?
"$MF" train "$DATA" >/dev/null 2>&1; expect_eq "train without --model" 2 $?
"$MF" train --model "$T/x.mfm" --prior spam=1.5 "$DATA" >/dev/null 2>&1
expect_eq "bad prior" 2 $?
"$MF" train --model "$T/x.mfm" /nonexistent.jsonl 2>"$T/err"
expect_eq "missing input" 1 $?
expect_grep "missing input message" "/nonexistent.jsonl: No such file" "$T/err"
echo "garbage" >"$T/bad.mfm"
"$MF" score --model "$T/bad.mfm" "$T/in.jsonl" 2>"$T/err" >/dev/null
expect_eq "bad model exit" 1 $?
expect_grep "bad model message" "not a modfilter model file" "$T/err"
head -c 1000 "$T/m.mfm" >"$T/trunc.mfm"
"$MF" explain --model "$T/trunc.mfm" "x" 2>"$T/err" >/dev/null
expect_eq "truncated model exit" 1 $?
expect_grep "truncated model message" "truncated" "$T/err"
"$MF" train --model "$T/x.mfm" --prior Spam=0.5 "$DATA" >/dev/null 2>&1
expect_eq "prior with a bad label name" 2 $?
rm -f "$T/x.mfm"
"$MF" train --model "$T/x.mfm" --prior abuze=0.1 "$DATA" >/dev/null 2>"$T/err"
expect_eq "prior of a label without examples" 1 $?
expect_grep "prior of a label without examples: why" "^modfilter: --prior abuze: no example has this label; labels with examples: [a-z, ]*abuse" "$T/err"
[ ! -e "$T/x.mfm" ] || { echo "FAIL: a model written with a misspelt --prior"; FAILS=$((FAILS+1)); }
"$MF" explain --model "$T/m.mfm" "some text" extra >/dev/null 2>&1
expect_eq "explain with two texts" 2 $?
"$MF" --help | grep -q "Exit codes"; expect_eq "help lists exit codes" 0 $?
# every command: -h and --help, anywhere, print its usage on standard output
for c in train forget score explain eval export queue "queue length" "score --model x"; do
    for h in -h --help; do
        # shellcheck disable=SC2086
        "$MF" $c $h >"$T/out" 2>"$T/err"
        expect_eq "$c $h exit" 0 $?
        expect_grep "$c $h usage" "^usage: modfilter ${c%% *} " "$T/out"
        expect_eq "$c $h nothing on stderr" "" "$(cat "$T/err")"
    done
done
# a file that cannot be read stops the run with exit 1 (it was one invalid
# line and exit 0, with a model written from nothing)
mkdir -p "$T/adir"
"$MF" score --model "$T/m.mfm" "$T/adir" >/dev/null 2>"$T/err"
expect_eq "score: unreadable input" 1 $?
expect_grep "score: unreadable input message" "adir: Is a directory" "$T/err"
"$MF" train --model "$T/fromdir.mfm" "$T/adir" >/dev/null 2>"$T/err"
expect_eq "train: unreadable input" 1 $?
expect_eq "train: unreadable input writes nothing" no "$([ -e "$T/fromdir.mfm" ] && echo yes || echo no)"
# --default-language takes a code as --languages does; --chargrams is strict
head -5 "$TOP/tests/data/tiny.jsonl" >"$T/five.jsonl"
"$MF" train --model "$T/dl.mfm" --languages english,spanish --default-language es "$T/five.jsonl" >/dev/null 2>&1
expect_eq "default language by code" 0 $?
"$MF" train --model "$T/cg.mfm" --chargrams 2-3junk "$T/five.jsonl" >/dev/null 2>"$T/err"
expect_eq "chargrams with junk" 2 $?

"$MF" train "$T/five.jsonl" --model >/dev/null 2>"$T/err"
expect_eq "train --model without a value" 2 $?
expect_grep "train --model without a value message" "needs a value" "$T/err"

# a long non-ASCII word's feature name is cut at a character boundary
# (it ended in half a character, printed as U+FFFD)
W=$(python3 -c 'print("".join(chr(0x430 + i % 32) for i in range(60)))')
printf '{"text":"%s bad","labels":{"spam":1}}\n{"text":"good words here","labels":{"spam":0}}\n' "$W" >"$T/u8.jsonl"
"$MF" train --model "$T/u8.mfm" --min-examples 1 --min-df 1 "$T/u8.jsonl" >/dev/null 2>&1
echo "{\"id\":\"a\",\"text\":\"$W\"}" | "$MF" score --model "$T/u8.mfm" --reasons >"$T/out"
expect_eq "long feature names whole characters" "True False" "$(python3 -c '
import json, sys
f = [x["feature"] for x in json.load(open(sys.argv[1]))["reasons"]["spam"]]
print(any(len(n.encode()) > 70 for n in f), any("\ufffd" in n for n in f))' "$T/out")"

# each usage names every option its command takes
usage_has() { # command option...
    local c=$1 o; shift
    "$MF" "$c" --help >"$T/out"
    for o in "$@"; do expect_grep "$c usage names $o" "(^|[[ ])$o[] ]" "$T/out"; done
}
usage_has train --model --from --languages --default-language --prior --features \
    --alpha --min-df --weights --chargrams --max-bytes --max-tokens --min-examples --strict
usage_has forget --model --from --strict
usage_has score --model -c --set --reasons --strict
usage_has explain --model -c --set
usage_has eval --folds --label
usage_has export --state-dir --base --model
usage_has queue --url --token -c --json --limit --cursor --label
# config file errors carry the prefix of every other error
"$MF" queue length -c /nonexistent >/dev/null 2>"$T/err"
expect_eq "queue -c missing exit" 1 $?
expect_eq "queue -c missing message" "modfilter: /nonexistent: No such file or directory" "$(cat "$T/err")"
"$MF" score --model "$T/m.mfm" -c /nonexistent - </dev/null >/dev/null 2>"$T/err"
expect_eq "score -c missing exit" 1 $?
expect_eq "score -c missing message" "modfilter: /nonexistent: No such file or directory" "$(cat "$T/err")"
# score -c uses the thresholds alone: another key's value, or a secret file
# the user cannot read, is the daemon's business
printf '[server]\nlisten = bogus\n[auth]\nmoderator_tokens_file = /nonexistent/tok\n[thresholds]\nreview = 0.3\n' >"$T/d.conf"
echo '{"id":"a","text":"hello"}' | "$MF" score --model "$T/m.mfm" -c "$T/d.conf" - >/dev/null 2>"$T/err"
expect_eq "score -c with daemon-only keys" 0 $?
printf '[thresholds]\nreview = 0.9\nreject = 0.5\n' >"$T/d.conf"
"$MF" score --model "$T/m.mfm" -c "$T/d.conf" - </dev/null >/dev/null 2>"$T/err"
expect_eq "score -c thresholds crossed exit" 1 $?
expect_grep "score -c thresholds crossed message" 'd.conf:2: thresholds.review: 0.9 is above' "$T/err"
"$MF" explain --model "$T/m.mfm" -c /nonexistent "some text" >/dev/null 2>"$T/err"
expect_eq "explain -c missing exit" 1 $?
# a bad --set is a usage error; explain takes neither --reasons nor --strict
"$MF" score --model "$T/m.mfm" --set thresholds.spam_review=2 - </dev/null >/dev/null 2>"$T/err"
expect_eq "score bad --set exit" 2 $?
"$MF" explain --model "$T/m.mfm" --reasons "some text" >/dev/null 2>"$T/err"
expect_eq "explain --reasons exit" 2 $?
expect_grep "explain --reasons message" "unknown option --reasons" "$T/err"
"$MF" explain --model "$T/m.mfm" some text >/dev/null 2>"$T/err"
expect_eq "explain two texts exit" 2 $?
expect_grep "explain two texts message" "one text" "$T/err"

finish
