#!/usr/bin/env bash
# The prepared GPU check (issue 17), for a lent GPU machine with PyTorch and JAX but no TensorFlow,
# Keras, Optuna or SQLAlchemy and no network: the missing pure-Python packages travel as wheels in
# .whl/ (git-ignored), and the tree with them stays under 64 MiB.
#
#   benchmarks/gpu_check.sh --fetch     # here, with the package registry: download the wheels into .whl/
#   benchmarks/gpu_check.sh --dry-run   # here: the commands it would run, the wheels and their total size
#   benchmarks/gpu_check.sh             # on the GPU machine (device tool: carry=[".whl"], timeout 540 s)
#
# On the GPU machine it prints, for KERAS_BACKEND=jax and torch: what `ocl devices` sees; the feature
# bank's throughput at 224 px beside published DenseNet-121 figures (benchmarks/gpu_throughput.py);
# a 40-trial `--strategy both` sweep of the embedded sample with 2 and with 4 workers on the one GPU
# (jax; wall time, trials per minute, mean trial time per strategy, the device each trial trained on);
# a shorter torch sweep; and that a GPU the backend cannot see is refused. Everything lands in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
# Versions are those of this project's .venv; Python 3.12 on x86-64 (the GPU machine's).
WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0 optuna==5.0.0 alembic==1.20.1 colorlog==6.12.0
        mako==1.4.3 sqlalchemy==2.1.9 greenlet plotly==7.1.0 pydicom==3.0.2)
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
OUT=${OUT:-/tmp/ocl-gpu-check}
SITE=/tmp/ocl-gpu-site

steps() {  # every command of the check, one per line
    cat <<STEPS
python3 -m pip install -q --no-index --no-deps --no-compile --target $SITE .whl/*.whl
nvidia-smi --query-gpu=index,name,memory.total,compute_cap --format=csv
KERAS_BACKEND=jax python3 -m sweep devices --format json
KERAS_BACKEND=torch python3 -m sweep devices --format json
KERAS_BACKEND=jax python3 benchmarks/gpu_throughput.py --size 224
KERAS_BACKEND=torch python3 benchmarks/gpu_throughput.py --size 224 --precision float32
python3 -m sweep sweep --backend jax --devices 0 --workers-per-gpu 2 --trials 40 --strategy both --weights none --storage sqlite:////tmp/jax2.db --study jax-2-workers --format json
python3 benchmarks/sweep_timings.py sqlite:////tmp/jax2.db --label "jax, 2 workers on one GPU:"
python3 -m sweep sweep --backend jax --devices 0 --workers-per-gpu 4 --trials 40 --strategy both --weights none --storage sqlite:////tmp/jax4.db --study jax-4-workers --format json
python3 benchmarks/sweep_timings.py sqlite:////tmp/jax4.db --label "jax, 4 workers on one GPU:"
python3 -m sweep sweep --backend torch --devices 0 --trials 8 --strategy both --weights none --image-size 64 --storage sqlite:////tmp/torch.db --study torch --format json
python3 benchmarks/sweep_timings.py sqlite:////tmp/torch.db --label "torch, 1 worker:"
KERAS_BACKEND=jax python3 -m sweep worker --study x --storage sqlite:////tmp/none.db --device 1
STEPS
}

tree_bytes() { git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1; }

case "${1:-}" in
--fetch)
    exclude=$(git rev-parse --git-path info/exclude)
    grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
    for spec in "${WHEELS[@]}"; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            "${PLATFORMS[@]}" -d .whl "$spec" || exit 1
    done
    exec "$0" --dry-run
    ;;
--dry-run)
    echo "# the commands the GPU check runs (in $OUT: one .txt per step):"
    steps
    echo "# wheels (${#WHEELS[@]} packages: ${WHEELS[*]}):"
    if compgen -G ".whl/*.whl" >/dev/null; then
        du -b .whl/*.whl | awk '{ printf "  %8.1f MiB  %s\n", $1 / 1048576, $2 }'
        wheels=$(du -cb .whl/*.whl | tail -n 1 | cut -f1)
    else
        echo "  none in .whl/ yet: run benchmarks/gpu_check.sh --fetch"
        wheels=0
    fi
    tree=$(tree_bytes)
    total=$((wheels + tree))
    printf "wheels %.1f MiB + tree %.1f MiB = %.1f MiB (limit 64 MiB): %s\n" \
        "$(echo "$wheels / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)" "$(echo "$total / 1048576" | bc -l)" \
        "$([ "$total" -lt $((64 * 1048576)) ] && echo fits || echo TOO LARGE)"
    exit 0
    ;;
esac

mkdir -p "$OUT"
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1 OCL_CACHE_DIR=/tmp/ocl-gpu-cache
n=0
while IFS= read -r step; do
    n=$((n + 1))
    start=$SECONDS
    timeout 300 bash -c "$step" > "$OUT/step$n.txt" 2>&1
    code=$?
    echo "[$n] exit $code in $((SECONDS - start)) s: $step" | tee -a "$OUT/summary.txt"
    grep -v '^\s*$' "$OUT/step$n.txt" | tail -n 4 | sed 's/^/      /' | tee -a "$OUT/summary.txt"
done < <(steps)
