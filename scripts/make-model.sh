#!/usr/bin/env bash
# make model: rebuild models/default.mfm from ../shared/datasets (all three
# sets, plus 1,000 Davidson tweets as ordinary text for the spam head:
# scripts/spam-negatives.py) with the priors of a blog's comment section
# (see models/README.md).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
D=${DATASETS:-../shared/datasets}
for f in youtube_spam davidson_hate_offensive mexa3t_aggressiveness_es; do
    [ -f "$D/$f.jsonl" ] || { echo "make model: $D/$f.jsonl not found"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/spam-negatives.py "$D/davidson_hate_offensive.jsonl" 1000 \
    >"$tmp/spam-negatives.jsonl"
set -x
"$BUILD/modfilter" train --model models/default.mfm \
    --languages english,spanish --prior spam=0.3 --prior abuse=0.1 \
    "$D/youtube_spam.jsonl" "$D/davidson_hate_offensive.jsonl" \
    "$D/mexa3t_aggressiveness_es.jsonl" "$tmp/spam-negatives.jsonl"
