#!/usr/bin/env bash
# How a model's heads treat comments from places they never learned from:
# the spam head (YouTube comments) on the Davidson and MEX-A3T tweets, which
# are not spam, and the abuse head (tweets) on the YouTube comments labelled
# ham.  Prints the share of each set a head scores at 0.5 or more and at 0.9
# or more: a false-positive rate out of domain, the one proxy the shared data
# offer for "comments from places it has never seen".  A few tweets are
# promotions, so the spam rate cannot reach 0.  Needs ../shared.
# Usage: scripts/crossdomain.sh [MODEL] [DATASET_DIR]
set -eu
cd "$(dirname "$0")/.."
model=${1:-models/default.mfm}
dir=${2:-../shared/datasets}
[ -d "$dir" ] || { echo "no data sets at $dir" >&2; exit 1; }
make -s all

# rate LABEL NAME [ONLY]: the share of the scored lines on stdin whose LABEL
# score is >= 0.5 and >= 0.9; with ONLY, of those whose record (the data
# set's lines, on fd 3) has labels.ONLY == 0.
rate() {
    python3 -c '
import json, sys
label, name, only = sys.argv[1], sys.argv[2], sys.argv[3]
recs = open(3)
n = hi = vhi = 0
for line in sys.stdin:
    rec = json.loads(recs.readline())
    while rec.get("id") != json.loads(line)["id"]:  # lines score skipped
        rec = json.loads(recs.readline())
    if only and rec["labels"].get(only) != 0:
        continue
    s = json.loads(line)["scores"][label]
    n += 1; hi += s >= 0.5; vhi += s >= 0.9
print("%-6s head on %-34s %6d comments: %5.1f%% >= 0.5, %5.1f%% >= 0.9"
      % (label, name, n, 100.0 * hi / n, 100.0 * vhi / n))
' "$1" "$2" "${3:-}"
}

for set in davidson_hate_offensive mexa3t_aggressiveness_es; do
    build/modfilter score --model "$model" "$dir/$set.jsonl" |
        rate spam "$set (tweets)" 3<"$dir/$set.jsonl"
done
build/modfilter score --model "$model" "$dir/youtube_spam.jsonl" |
    rate abuse "youtube_spam (ham only)" spam 3<"$dir/youtube_spam.jsonl"
