#!/usr/bin/env bash
# Builds the starting inputs of every target in out/in/TARGET: the hand-written documents of
# seeds/, the recorded Moodle traffic of tests/vectors/moodle, and the committed corpus.
set -euo pipefail
cd "$(dirname "$0")"
vectors=../tests/vectors/moodle
rm -rf out/in && mkdir -p out/in/{xmlrpc_call,xmlrpc_response,envelope,ws_params}
copy() { # copy DEST FILE...: names keep the vector directory so they stay unique
    local dest=$1; shift
    for f in "$@"; do [ -f "$f" ] && cp "$f" "out/in/$dest/$(basename "$(dirname "$f")")-$(basename "$f")"; done
}
copy xmlrpc_call $vectors/*/request.xmlrpc.xml $vectors/01-keyswap/request.body \
    $vectors/07-tampered-signature-710/callback.request.body
copy xmlrpc_response $vectors/*/response.xmlrpc.xml $vectors/01-keyswap/response.body \
    $vectors/06-unknown-host-7020/response.body $vectors/07-tampered-signature-710/callback.response.body
copy envelope $vectors/*/request.body $vectors/*/response.body $vectors/*/*.signed.xml
for target in xmlrpc_call xmlrpc_response envelope ws_params; do
    cp seeds/$target/* out/in/$target/
    if [ -d corpus/$target ]; then cp corpus/$target/* out/in/$target/; fi
done
