#!/usr/bin/env bash
# make bench: classifier throughput, `modfilter score` end to end, and (once
# the daemon exists) HTTP throughput with wrk.  Needs ../shared/datasets for
# realistic texts; CPU times, so a busy machine slows but does not skew them.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
D=${DATASETS:-../shared/datasets}
if [ ! -d "$D" ]; then echo "bench: $D not found (set DATASETS=)"; exit 1; fi
data="$D/youtube_spam.jsonl $D/davidson_hate_offensive.jsonl $D/mexa3t_aggressiveness_es.jsonl"
echo "== classifier (one core, no I/O)"
"$BUILD/bench_classifier" models/default.mfm $data
echo "== modfilter score end to end: 100,000 lines"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/in.jsonl" $data <<'PY'
import json, sys
texts = [json.loads(l)["text"] for f in sys.argv[2:] for l in open(f)]
with open(sys.argv[1], "w") as out:
    for i in range(100000):
        out.write(json.dumps({"id": "b%d" % i, "text": texts[i % len(texts)]}) + "\n")
PY
/usr/bin/time -f "%U %S %M" -o "$tmp/time" "$BUILD/modfilter" score --model models/default.mfm "$tmp/in.jsonl" >/dev/null
read -r user sys maxrss <"$tmp/time"
python3 -c "import sys; u,s,m=map(float,sys.argv[1:]); print('score: %.0f comments per CPU-second (user %.2fs sys %.2fs), max RSS %.1f MiB' % (100000/(u+s), u, s, m/1024))" "$user" "$sys" "$maxrss"
if [ -x scripts/bench-http.sh ] && [ -x "$BUILD/modfilterd" ]; then
    echo "== HTTP"
    BUILD=$BUILD scripts/bench-http.sh
fi
