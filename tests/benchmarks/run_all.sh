#!/usr/bin/env bash
# Run every benchmark under tests/benchmarks/ one after the other (never in parallel: each
# measures a client and a sandbox on a core each) and leave JSON in tests/benchmarks/results/.
#
#   tests/benchmarks/run_all.sh            # modest sizes, about 15 minutes on 2 cores
#   FULL=1 tests/benchmarks/run_all.sh     # the sizes of the targets (100,000-family scale)
#   SCALE_FAMILIES=5000 tests/benchmarks/run_all.sh   # any size for bench_scale.py
#
# Not run by CI. PYTHON overrides the interpreter (default: /work/venv/bin/python, else python3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-/work/venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
cd "$HERE"
mkdir -p results

if [ "${FULL:-0}" = "1" ]; then
    SCALE=100000; STATUS=100000; MANIFEST=100000; OVERHEAD=5000
else
    SCALE=20000; STATUS=100000; MANIFEST=20000; OVERHEAD=5000
fi
SCALE="${SCALE_FAMILIES:-$SCALE}"

failed=()
bench() {
    local name="$1"; shift
    [ -f "$name" ] || { echo "== $name: absent, skipped"; return 0; }
    echo "== $name $*"
    local started=$SECONDS
    if ! "$PYTHON" "$name" "$@"; then failed+=("$name"); fi
    echo "== $name: $((SECONDS - started)) s"
}

bench bench_startup.py
bench bench_sandbox.py
bench bench_rate.py
bench bench_manifest.py --families "$MANIFEST"
bench bench_status.py --families "$STATUS"
bench bench_run.py --families 600 --baseline-families 100 --overhead-families "$OVERHEAD"
bench bench_recovery.py --families 900 --outage-after 250
bench bench_scale.py --families "$SCALE"

echo "results in $HERE/results/:"
ls -1 results/*.json
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed or missed a target: ${failed[*]}" >&2
    exit 1
fi
