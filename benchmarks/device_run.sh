#!/usr/bin/env bash
# Train reproductions on the lent GPU machine for a fixed training budget each and bring their
# records back: the one prepared command of a session that is lent the device machine.
#
#   usage: [GNNNS_GIT_COMMIT=HASH] [GNNNS_RESUME=1] [GNNNS_PRECISION=bf16] \
#          bash benchmarks/device_run.sh SECONDS NAME [NAME...]
#
# Each NAME is a reproduction (`gnnns bench list`), trained with `--device cuda --time-budget
# SECONDS` (seconds of training steps; its test evaluation comes on top); its record
# repro_NAME.{json,png} and its log (whole lines, no progress bars) are copied to $OUT, the
# device tool's folder of files that come back (benchmarks/results/device when unset). The machine's copy of the tree has no .git: name the commit it was copied
# from, from a clean tree, with GNNNS_GIT_COMMIT. The datasets travel in .data (git-ignored here
# through .git/info/exclude, and named in the call's carry). GNNNS_RESUME=1 continues each run
# from runs/bench/NAME, which a machine kept warm between two calls still holds.
# The steps, from the repository root (see benchmarks/README.md, "On the device machine"):
#
#   mkdir -p .data && cp -r ../shared/datasets/fb15k-237 ../shared/datasets/wn18rr .data/
#   grep -qx '/.data/' .git/info/exclude || echo /.data/ >> .git/info/exclude
#   run: command "GNNNS_GIT_COMMIT=$(git rev-parse HEAD) bash benchmarks/device_run.sh 240 NAME...",
#        carry [".data"], timeout_s 600
#   cp FILES_AT/repro_* benchmarks/results/ && gnnns bench readme
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${1:?usage: bash benchmarks/device_run.sh SECONDS NAME [NAME...]}
shift
[ $# -gt 0 ] || { echo "usage: bash benchmarks/device_run.sh SECONDS NAME [NAME...]" >&2; exit 2; }
export GNNNS_DATA=${GNNNS_DATA:-$PWD/.data}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
out=${OUT:-benchmarks/results/device}
mkdir -p "$out"
device=${GNNNS_DEVICE:-cuda}
python3 -c 'import torch; print("torch", torch.__version__, "gpu:", torch.cuda.is_available() and torch.cuda.get_device_name(0))'
status=0
for name in "$@"; do
    flags=(--device "$device" --time-budget "$budget")
    [ -n "${GNNNS_RESUME:-}" ] && flags+=(--resume)
    [ -n "${GNNNS_PRECISION:-}" ] && flags+=(--precision "$GNNNS_PRECISION")
    echo "== gnnns bench $name ${flags[*]}"
    # Progress bars redraw with carriage returns: keep the log to whole lines.
    python3 -m gnnns bench "$name" "${flags[@]}" 2>&1 | tr '\r' '\n' | grep -v 'it/s\|s/it' > "$out/$name.log"
    code=${PIPESTATUS[0]}
    tail -n 4 "$out/$name.log"
    cp benchmarks/results/"repro_$name".json benchmarks/results/"repro_$name".png "$out"/ 2>/dev/null
    [ "$code" -eq 0 ] || { echo "gnnns bench $name failed with status $code"; status=1; }
done
exit $status
