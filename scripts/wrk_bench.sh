#!/usr/bin/env bash
# Load benchmark of examples/actix_web.rs with wrk: what one recorded event per request, and one
# more flag read per request, cost the service's requests/s against the same service without
# telemetry (`ACTIX_WEB_TELEMETRY=off|record|flag`).
#
#   scripts/wrk_bench.sh [--rounds N] [--duration S] [--warmup S] [--connections N]
#                        [--pin] [--no-build]
#
# Every round runs the three modes one after the other, starting with a different mode each
# round, so load from elsewhere on the machine falls on every mode alike. Each run is a fresh
# server process with a state directory of its own: start, wait until it answers, warm up,
# measure with `wrk -t1 -c<connections> -d<duration>s`, then SIGINT and check its
# `shutdown-report` line against what the loopback backend counted. Besides requests/s it
# prints the server's CPU time per request (every thread of the process), which other work on
# the machine disturbs far less.
#
# Pinning (`--pin`): the server on core 0, wrk and the loopback backend on core 1. Off by
# default: on a two-core machine that other work also uses, whichever pinned core that work
# lands on becomes the bottleneck, and the requests/s of one mode spread over a factor of three
# or more; unpinned, the scheduler spreads that load and the spread is a few tens of percent.
# Pinned is the better measure of the server alone on a quiet machine.
#
# Exit status: 0 when both targets pass (record >= 95 % and flag >= 90 % of off, medians), 2 when
# one fails, 1 when a run did not complete or its report did not add up.
#
# Needs wrk (`apt-get install -y wrk`), curl, jq and taskset (util-linux).
set -euo pipefail

ROUNDS=5
DURATION=10
WARMUP=2
CONNECTIONS=32
PIN=0
BUILD=1
PORT=${WRK_BENCH_PORT:-18380}
RECORD_TARGET=0.95
FLAG_TARGET=0.90
# The flag the example's `flag` mode reads; the backend's check-in turns it on.
FLAG=loud-greeting

usage() {
    sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 1
}

while (($#)); do
    case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --pin) PIN=1; shift ;;
    --no-build) BUILD=0; shift ;;
    *) usage ;;
    esac
done

for tool in wrk curl jq taskset; do
    if ! command -v "$tool" >/dev/null; then
        case "$tool" in
        wrk) echo "wrk is missing: install it with \`apt-get install -y wrk\`" >&2 ;;
        taskset) echo "taskset is missing: install it with \`apt-get install -y util-linux\`" >&2 ;;
        *) echo "$tool is missing: install it with \`apt-get install -y $tool\`" >&2 ;;
        esac
        exit 1
    fi
done

cd "$(dirname "$0")/.."
if ((BUILD)); then
    cargo build --release --features actix-web --example actix_web --example loopback_backend
fi
# WRK_BENCH_SERVER runs another build of the example (to compare two builds in one hour).
SERVER_BIN=${WRK_BENCH_SERVER:-target/release/examples/actix_web}
BACKEND_BIN=target/release/examples/loopback_backend

if ((PIN)) && (($(nproc) >= 2)); then
    SERVER_CPU=(taskset -c 0)
    CLIENT_CPU=(taskset -c 1)
    PINNING="server on core 0; wrk and backend on core 1"
else
    SERVER_CPU=()
    CLIENT_CPU=()
    PINNING="none"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wrk-bench.XXXXXX")
BACKEND_PID=
SERVER_PID=
cleanup() {
    [[ -n $SERVER_PID ]] && kill -KILL "$SERVER_PID" 2>/dev/null || true
    [[ -n $BACKEND_PID ]] && kill -TERM "$BACKEND_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# ── the loopback backend, answering check-ins with the flag on ────────────────────────────────
echo "{\"options\": {\"$FLAG\": {\"variant\": true}}}" >"$WORK/checkin.json"
"${CLIENT_CPU[@]}" "$BACKEND_BIN" --checkin "$WORK/checkin.json" --ignore-stdin \
    >"$WORK/backend.out" 2>"$WORK/backend.err" &
BACKEND_PID=$!
BACKEND_URL=
for _ in $(seq 100); do
    BACKEND_URL=$(sed -n 's/^listening //p' "$WORK/backend.out")
    [[ -n $BACKEND_URL ]] && break
    sleep 0.05
done
if [[ -z $BACKEND_URL ]]; then
    echo "the loopback backend did not start:" >&2
    cat "$WORK/backend.err" >&2
    exit 1
fi

backend_events() {
    curl -sf "$BACKEND_URL/stats" | jq '.events'
}

URL="http://127.0.0.1:$PORT/"

# A server left running by a run that failed half-way.
kill_server() {
    if [[ -n $SERVER_PID ]]; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

# Runs one mode once; sets RPS_OF_RUN, CPU_OF_RUN (µs of server CPU per request) and
# CHECK_OF_RUN (ok…, or what was wrong).
run_once() {
    local mode=$1 tag=$2
    local out="$WORK/$tag.out" err="$WORK/$tag.err"
    local before
    before=$(backend_events)
    env -u DO_NOT_TRACK -u DETSYS_IDS_TELEMETRY -u DETSYS_CORRELATION -u DETSYS_IDS_CHECKIN_FILE \
        ACTIX_WEB_TELEMETRY="$mode" ACTIX_WEB_ADDR="127.0.0.1:$PORT" \
        DETSYS_IDS_TRANSPORT="$BACKEND_URL" XDG_STATE_HOME="$WORK/state-$tag" \
        "${SERVER_CPU[@]}" "$SERVER_BIN" >"$out" 2>"$err" &
    SERVER_PID=$!

    local body="" extra=0 flag_events=0
    for _ in $(seq 200); do
        body=$(curl -s "$URL" 2>/dev/null) && break
        sleep 0.05
    done
    [[ -n $body ]] || { echo "FAIL: $mode did not answer" >&2; return 1; }
    extra=1
    # One `$feature_flag_called` for the flag on, and one more if a read found it absent.
    if [[ $mode == flag ]]; then
        flag_events=$([[ $body == HELLO ]] && echo 1 || echo 2)
    fi
    if [[ $mode == flag ]]; then
        # The first check-in brings the flag; until then the read finds nothing.
        for _ in $(seq 100); do
            [[ $body == HELLO ]] && break
            sleep 0.05
            body=$(curl -s "$URL")
            extra=$((extra + 1))
        done
        [[ $body == HELLO ]] || { echo "FAIL: flag $FLAG never read as on" >&2; return 1; }
    fi

    local warm measured rps served
    warm=$("${CLIENT_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "$URL")
    measured=$("${CLIENT_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL")
    echo "$measured" >"$WORK/$tag.wrk"
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$measured")
    served=$(($(awk '/requests in/ {print $1}' <<<"$warm") +
        $(awk '/requests in/ {print $1}' <<<"$measured") + extra))
    if grep -qE 'Non-2xx|Socket errors' <<<"$measured"; then
        echo "FAIL: $mode: wrk saw errors: $(grep -E 'Non-2xx|Socket errors' <<<"$measured")" >&2
        return 1
    fi

    # CPU time of the whole server process (every thread, telemetry's included), per request:
    # steadier than requests/s when other work shares the machine.
    local ticks
    ticks=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
    CPU_OF_RUN=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$served" \
        'BEGIN {printf "%.2f", t / hz * 1e6 / n}')

    kill -INT "$SERVER_PID"
    local status=0
    wait "$SERVER_PID" || status=$?
    SERVER_PID=
    ((status == 0)) || { echo "FAIL: $mode exited $status" >&2; cat "$err" >&2; return 1; }

    local check=ok
    if [[ $mode != off ]]; then
        local report delivered after events
        report=$(sed -n 's/^shutdown-report //p' "$out")
        [[ -n $report ]] || { echo "FAIL: $mode printed no shutdown-report" >&2; return 1; }
        # The backend may still be counting the last batch when the server has exited.
        sleep 0.2
        after=$(backend_events)
        delivered=$(jq '.stats.delivered' <<<"$report")
        events=$((delivered - flag_events))
        # wrk stops counting at its deadline: requests in flight then were served (and recorded)
        # but not counted, at most one per connection per wrk run.
        if [[ $(jq '.complete and .stats.dropped.total == 0 and .stats.accepted == .stats.delivered' <<<"$report") != true ]]; then
            check="report: $report"
        elif ((after - before != delivered)); then
            check="backend counted $((after - before)), report says $delivered delivered"
        elif ((events < served || events > served + 2 * CONNECTIONS)); then
            check="served $served, delivered $delivered"
        else
            check="ok: served $served, delivered $delivered (in flight at wrk's end: $((events - served)))"
        fi
    fi
    RPS_OF_RUN=$rps
    CHECK_OF_RUN=$check
}

median() {
    sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

MODES=(off record flag)
echo "wrk_bench: $ROUNDS rounds, wrk -t1 -c$CONNECTIONS -d${DURATION}s after ${WARMUP}s of warm-up; pinning: $PINNING"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A RPS CPU
FAILED=0
for ((round = 1; round <= ROUNDS; round++)); do
    for ((i = 0; i < 3; i++)); do
        mode=${MODES[(round - 1 + i) % 3]}
        if ! run_once "$mode" "$mode-$round"; then
            kill_server
            FAILED=1
            continue
        fi
        RPS[$mode,$round]=$RPS_OF_RUN
        CPU[$mode,$round]=$CPU_OF_RUN
        [[ $CHECK_OF_RUN == ok* ]] || FAILED=1
        printf '  round %d %-6s %8.0f req/s %6.2f µs CPU/request  %s\n' \
            "$round" "$mode" "$RPS_OF_RUN" "$CPU_OF_RUN" "$CHECK_OF_RUN"
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
printf '| round | off | record | flag | record/off | flag/off |\n|---|---:|---:|---:|---:|---:|\n'
for ((round = 1; round <= ROUNDS; round++)); do
    off=${RPS[off,$round]:-0} record=${RPS[record,$round]:-0} flag=${RPS[flag,$round]:-0}
    awk -v r="$round" -v o="$off" -v c="$record" -v f="$flag" 'BEGIN {
        printf "| %d | %.0f | %.0f | %.0f | %s | %s |\n", r, o, c, f,
            (o > 0 ? sprintf("%.3f", c / o) : "-"), (o > 0 ? sprintf("%.3f", f / o) : "-") }'
done
declare -A MEDIAN MEDIAN_CPU
for mode in "${MODES[@]}"; do
    MEDIAN[$mode]=$(for ((round = 1; round <= ROUNDS; round++)); do
        echo "${RPS[$mode,$round]:-0}"
    done | median)
    MEDIAN_CPU[$mode]=$(for ((round = 1; round <= ROUNDS; round++)); do
        echo "${CPU[$mode,$round]:-0}"
    done | median)
done
echo "median server CPU per request: off ${MEDIAN_CPU[off]} µs, record ${MEDIAN_CPU[record]} µs, flag ${MEDIAN_CPU[flag]} µs"
awk -v o="${MEDIAN[off]}" -v c="${MEDIAN[record]}" -v f="${MEDIAN[flag]}" \
    -v rt="$RECORD_TARGET" -v ft="$FLAG_TARGET" 'BEGIN {
    if (o <= 0) { print "no run of mode off completed"; exit 1 }
    printf "| median | %.0f | %.0f | %.0f | %.3f | %.3f |\n\n", o, c, f, c / o, f / o
    printf "record/off = %.3f (target >= %.2f): %s\n", c / o, rt, (c / o >= rt ? "PASS" : "FAIL")
    printf "flag/off   = %.3f (target >= %.2f): %s\n", f / o, ft, (f / o >= ft ? "PASS" : "FAIL")
    exit !(c / o >= rt && f / o >= ft)
}' && PASSED=1 || PASSED=0

if ((FAILED)); then
    echo "a run did not complete or its report did not add up" >&2
    exit 1
fi
((PASSED)) || exit 2
