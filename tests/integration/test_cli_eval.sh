#!/usr/bin/env bash
# modfilter eval prints the figures of ../shared/tools/evalcli.py: checked
# against the same computation through `modfilter train` and `score` (as
# evalcli does it) on a made-up data set where the training order (over
# 4,000 examples: the calibration reservoir) and the records' lang matter.
set -u
. "$(dirname "$0")/testlib.sh"
MF="$BIN/modfilter"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# 6,000 records; ids in random order; a third of them with a wrong "lang";
# the folds file in another order, with an id listed twice (first place,
# last fold), an id twice in the data (the last record counts) and two ids
# that no record has
python3 - "$T" <<'PY'
import json, random, sys
d = sys.argv[1]
r = random.Random(7)
spam = "subscribing channels winning prizes clicking offers visiting followers".split()
ham = "singing beautiful memories watching dancing loving listening amazing".split()
both = "songs videos comments people things nights years hours".split()
recs = []
for i in range(6000):
    y = int(r.random() < 0.4)
    words = [r.choice((spam if y else ham) if r.random() < 0.35 else
                      (ham if y else spam) if r.random() < 0.3 else both)
             for _ in range(r.randint(3, 9))]
    o = {"id": "r%05d" % r.randrange(10**5) + "-%d" % i, "text": " ".join(words),
         "labels": {"spam": y}}
    if r.random() < 0.33:
        o["lang"] = "es"
    recs.append(o)
r.shuffle(recs)
dup = dict(recs[10], text="subscribing winning prizes", labels={"spam": 1})
with open(d + "/data.jsonl", "w") as f:
    for o in recs + [dup]:
        f.write(json.dumps(o) + "\n")
ids = [o["id"] for o in recs]
r.shuffle(ids)
with open(d + "/folds.tsv", "w") as f:
    f.write("id\tfold\n")
    for k, i in enumerate(ids):
        f.write("%s\t%s\n" % (i, "train" if k < 4000 else k % 2))
    f.write("%s\t0\n" % ids[4001])  # was fold 1: now 0, trained at 4001
    f.write("nosuchid\t0\nnosuchid2\t1\n")
PY

# the reference: evalcli's steps, with the train and score commands
python3 - "$MF" "$T" >"$T/want" <<'PY'
import json, subprocess, sys
mf, d = sys.argv[1:]
recs = {}
for line in open(d + "/data.jsonl"):
    o = json.loads(line)
    recs[o["id"]] = o
fold_of = {}
for line in open(d + "/folds.tsv"):
    k, v = line.rstrip("\n").split("\t")
    if (k, v) != ("id", "fold") and k in recs:
        fold_of[k] = v
rows = []
for fold in sorted({v for v in fold_of.values() if v != "train"}):
    truth = {}
    with open(d + "/tr.jsonl", "w") as tr, open(d + "/te.jsonl", "w") as te:
        for k, v in fold_of.items():
            o = recs[k]
            if v == fold:
                truth[k] = o["labels"]["spam"]
                te.write(json.dumps({"id": k, "text": o["text"]}) + "\n")
            else:
                tr.write(json.dumps({"id": k, "text": o["text"],
                                     "labels": o["labels"]}) + "\n")
    subprocess.run([mf, "train", "--model", d + "/m.mfm", d + "/tr.jsonl"],
                   check=True, capture_output=True)
    out = subprocess.run([mf, "score", "--model", d + "/m.mfm", d + "/te.jsonl"],
                         check=True, capture_output=True, text=True).stdout
    score = {o["id"]: o["scores"]["spam"] for o in map(json.loads, out.splitlines())}
    allv = sorted((score[k], truth[k]) for k in truth)
    rank_sum, i = 0.0, 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1][0] == allv[i][0]:
            j += 1
        rank_sum += ((i + j) / 2.0 + 1.0) * sum(
            1 for k in range(i, j + 1) if allv[k][1])
        i = j + 1
    npos = sum(truth.values()); nneg = len(truth) - npos
    auc = (rank_sum - npos * (npos + 1) / 2.0) / (npos * nneg)
    tp = sum(1 for k in truth if truth[k] and score[k] >= 0.5)
    fp = sum(1 for k in truth if not truth[k] and score[k] >= 0.5)
    fn = sum(1 for k in truth if truth[k] and score[k] < 0.5)
    acc = (len(truth) - fp - fn) / len(truth)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    rows.append((auc, acc, f1))
    print(f"fold {fold:>10}  n={len(truth):6d}  auc={auc:.4f}  acc={acc:.4f}  f1={f1:.4f}")
m = [sum(r[k] for r in rows) / len(rows) for k in range(3)]
print(f"mean auc={m[0]:.4f} acc={m[1]:.4f} f1={m[2]:.4f}")
PY
expect_eq "reference computed" 0 $?

"$MF" eval --folds "$T/folds.tsv" --label spam "$T/data.jsonl" >"$T/got" 2>"$T/err"
expect_eq "eval exit" 0 $?
expect_eq "eval prints the reference's figures" "$(cat "$T/want")" "$(cat "$T/got")"
expect_grep "missing ids warned about" \
    "folds.tsv: 2 ids are not records of .*data.jsonl with label spam \(the first: 'nosuchid'\)" \
    "$T/err"

finish
