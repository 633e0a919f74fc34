#!/usr/bin/env bash
# The prepared GPU check (issue 17), for the lent H200: run with the device tool as
#   run(command="bash scripts/gpu_check/run.sh", carry=[".whl"], timeout_s=540)
# after scripts/gpu_check/fetch_wheels.sh here. No TensorFlow there: the JAX and PyTorch backends.
# Everything it measures lands in $OUT (devices.json, the sweeps' JSON answers, timings.txt).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OCL_CACHE_DIR=/tmp/ocl-cache
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
ocl() { python3 -m sweep "$@"; }
nvidia-smi --query-gpu=index,name,memory.total --format=csv | tee "$OUT/nvidia-smi.txt"
for backend in jax torch; do
    KERAS_BACKEND=$backend ocl devices --format json > "$OUT/devices-$backend.json"; echo "devices $backend: exit $?"
done
time_it() { local start=$SECONDS; "$@"; local code=$?; echo "$* -> exit $code in $((SECONDS - start)) s" | tee -a "$OUT/timings.txt"; }
# 1. both strategies on the GPU, JAX, two workers sharing it (memory capped), exact trial count
time_it ocl sweep --backend jax --devices 0 --workers-per-gpu 2 --trials 12 --weights none --image-size 64 \
    --strategy both --storage "sqlite:////tmp/jax.db" --format json > "$OUT/sweep-jax.json"
# 2. the same on PyTorch, one worker
time_it ocl sweep --backend torch --devices 0 --trials 6 --weights none --image-size 64 \
    --strategy both --storage "sqlite:////tmp/torch.db" --format json > "$OUT/sweep-torch.json"
# 3. what each trial says it trained on (must be "gpu (NVIDIA H200)", never cpu)
python3 - <<'PY' | tee "$OUT/devices-used.txt"
import optuna
for url in ("sqlite:////tmp/jax.db", "sqlite:////tmp/torch.db"):
    for summary in optuna.get_all_study_summaries(url):
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        used = sorted({str(t.user_attrs.get("ocl:device_used")) for t in study.trials if t.state.name == "COMPLETE"})
        print(url, summary.study_name, study.user_attrs.get("ocl:backend"), len(study.trials), used)
PY
# 4. a GPU the backend cannot see (the H200 is GPU 0 alone) is refused: exit 2, one error line
KERAS_BACKEND=jax ocl worker --study x --storage sqlite:////tmp/none.db --device 1 \
    2> "$OUT/refusal.txt"; echo "refusal exit $?" | tee -a "$OUT/timings.txt"
