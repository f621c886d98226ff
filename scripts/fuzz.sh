#!/usr/bin/env bash
# Builds every fuzz/fuzz_*.c with libFuzzer (clang, ASan+UBSan) and runs
# each for $1 seconds (default 10) on a copy of its committed seed corpus
# (fuzz/corpus/NAME/).  New inputs go to build-fuzz/corpus/NAME, not into the
# tree; a crash stops the run and leaves its input in build-fuzz/.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-10}
out=build-fuzz
mkdir -p "$out"
pkgs="libevent libevent_pthreads hiredis jansson libutf8proc inih libxxhash"
cflags="-g -O1 -std=c11 -D_GNU_SOURCE -pthread -Iclassifier -Idaemon -Icli $(pkg-config --cflags $pkgs)"
libs="$(pkg-config --libs $pkgs) -lstemmer -lm -pthread"
san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
lib_src=$(ls classifier/*.c)
dmn_src=$(ls daemon/*.c 2>/dev/null | grep -v '/main.c$' || true)
cli_src=cli/jsonl.c # the one part of modfilter a target needs (fuzz_jsonl)
status=0
for f in fuzz/fuzz_*.c; do
    name=$(basename "$f" .c); name=${name#fuzz_}
    clang $cflags $san -o "$out/fuzz_$name" "$f" $lib_src $dmn_src $cli_src $libs
    mkdir -p "$out/corpus/$name" "fuzz/corpus/$name"
    cp -n fuzz/corpus/$name/* "$out/corpus/$name/" 2>/dev/null || true
    echo "fuzz_$name: ${secs}s"
    if ! "$out/fuzz_$name" -max_total_time="$secs" -max_len=65536 \
        -artifact_prefix="$out/$name-" -print_final_stats=1 \
        "$out/corpus/$name" 2>"$out/$name.log"; then
        echo "fuzz_$name FAILED:"; tail -30 "$out/$name.log"; status=1
    else
        grep -E 'stat::number_of_executed_units|cov:' "$out/$name.log" | tail -2
    fi
done
exit $status
