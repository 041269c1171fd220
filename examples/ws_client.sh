#!/usr/bin/env bash
# A Moodle-style REST client for usestats: calls every web service function in JSON and in
# Moodle XML, as a Moodle client sends them (form-encoded POST, PHP array notation for
# lists), and prints the answers.
#
#   examples/ws_client.sh [BASE_URL] [TOKEN]
#
#   BASE_URL  default $USESTATS_URL, else http://127.0.0.1:8080
#   TOKEN     default $USESTATS_TOKEN (from `usestats token create WWWROOT USERNAME`; the
#             token's grant needs --course)
#   WS_USERS  usernames to ask about, space-separated (default: two learners of the demo site)
#   WS_COURSE a course shortname (default: FR101, a course of the demo site)
#
# Against the demo site:
#   usestats demo && usestats grant add http://127.0.0.1:8080 reports --course
#   usestats token create http://127.0.0.1:8080 reports      # prints the token once
#   usestats serve &  examples/ws_client.sh http://127.0.0.1:8080 TOKEN
#
# Exits with status 1 when a call that should succeed answers with a Moodle exception, or
# when a wrong token is not refused, so the script doubles as a smoke test.
set -euo pipefail

base=${1:-${USESTATS_URL:-http://127.0.0.1:8080}}
token=${2:-${USESTATS_TOKEN:-}}
read -r -a users <<<"${WS_USERS:-katrin.brown rosa.hoffmann}"
course=${WS_COURSE:-FR101}
endpoint="${base%/}/webservice/rest/server.php"

if [[ -z $token ]]; then
    echo "usage: $0 [BASE_URL] TOKEN   (or set USESTATS_TOKEN)" >&2
    exit 2
fi
if ((${#users[@]} == 0)); then
    echo "WS_USERS names no user" >&2
    exit 2
fi

failures=0

# call FORMAT FUNCTION [name=value ...]: POST one call, print the answer, return 1 on an
# exception. Values are URL-encoded; names keep their brackets, as PHP clients send them.
call() {
    local format=$1 function=$2
    shift 2
    local args=(--silent --show-error --data-urlencode "wstoken=$token"
        --data-urlencode "wsfunction=$function" --data-urlencode "moodlewsrestformat=$format")
    local pair
    for pair in "$@"; do
        args+=(--data-urlencode "$pair")
    done
    local answer
    # Called inside `if`, where set -e is off: an unreachable server must still stop us.
    if ! answer=$(curl "${args[@]}" "$endpoint"); then
        echo "!! cannot reach $endpoint" >&2
        exit 3
    fi
    echo "== $function ($format) $*"
    if [[ $format == json ]] && command -v jq >/dev/null; then
        jq . <<<"$answer" || return 1
    else
        printf '%s\n' "$answer"
    fi
    echo
    case $answer in
    '{"exception"'* | *'<EXCEPTION '*) return 1 ;;
    '[{"user"'* | '{"user"'* | *'<RESPONSE>'*) return 0 ;;
    *) return 1 ;; # not a web-service answer at all (a 404 page, a proxy error, ...)
    esac
}

expect_ok() {
    if ! call "$@"; then
        echo "!! $2 ($1) failed" >&2
        failures=$((failures + 1))
    fi
}

uids=()
for i in "${!users[@]}"; do
    uids+=("uids[$i]=${users[$i]}")
done

for format in json xml; do
    # One user, every course; then one course only (its row, its sessions).
    expect_ok "$format" block_use_stats_get_user_stats uidsource=username "uid=${users[0]}"
    expect_ok "$format" block_use_stats_get_user_stats uidsource=username "uid=${users[0]}" \
        cidsource=shortname "cid=$course"
    # Several users in one call, one scan of the log.
    expect_ok "$format" block_use_stats_get_users_stats uidsource=username "${uids[@]}"
    expect_ok "$format" block_use_stats_get_users_stats uidsource=username "${uids[@]}" \
        cidsource=shortname "cid=$course" score=0
    # One course for several users, with first and last session in that course.
    expect_ok "$format" block_use_stats_get_users_course_stats uidsource=username "${uids[@]}" \
        cidsource=shortname "cid=$course"
done

# A wrong token must be refused the way Moodle refuses it.
refused=$(curl --silent --show-error "$endpoint" -d wstoken=0123456789abcdef0123456789abcdef \
    -d wsfunction=block_use_stats_get_user_stats -d moodlewsrestformat=json \
    -d uidsource=username --data-urlencode "uid=${users[0]}")
echo "== wrong token: $refused"
if [[ $refused != *'"errorcode":"invalidtoken"'* ]]; then
    echo "!! a wrong token was not refused with invalidtoken" >&2
    failures=$((failures + 1))
fi

if ((failures > 0)); then
    echo "$failures call(s) failed" >&2
    exit 1
fi
echo "all calls answered"
