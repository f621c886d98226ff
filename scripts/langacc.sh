#!/usr/bin/env bash
# Language-detection accuracy of the tokeniser on the shared data sets
# (English: YouTube spam + Davidson; Spanish: MEX-A3T).  Not part of
# `make test`: it needs ../shared.  Usage: scripts/langacc.sh [DATASET_DIR]
set -eu
cd "$(dirname "$0")/.."
dir=${1:-../shared/datasets}
[ -d "$dir" ] || { echo "no data sets at $dir" >&2; exit 1; }
make -s build/tests/test_text
exec build/tests/test_text --langacc "$dir/youtube_spam.jsonl" \
    "$dir/davidson_hate_offensive.jsonl" "$dir/mexa3t_aggressiveness_es.jsonl"
