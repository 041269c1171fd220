#!/usr/bin/env bash
# run.sh TARGET SECONDS: one AFL++ instance on one target, no UI, lowest priority.
# -t 40+: an input taking over 40 ms is a hang (inputs are at most a few KB, so a linear
# parser takes well under a millisecond); the + skips seeds that time out instead of aborting.
set -euo pipefail
cd "$(dirname "$0")"
target=$1 seconds=$2
dict=dict/xmlrpc.dict
case $target in envelope) dict=dict/envelope.dict ;; ws_params) dict=dict/ws_params.dict ;; esac
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
exec nice -n 19 cargo afl fuzz -i out/in/$target -o out/$target -x $dict -t 40+ -V "$seconds" \
    target/release/$target
