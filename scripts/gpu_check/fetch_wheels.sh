#!/usr/bin/env bash
# Download, here, the wheels OCL needs on the lent GPU machine (it has PyTorch, JAX, numpy, pandas,
# scikit-learn, typer and rich, but no Keras, Optuna, SQLAlchemy, plotly or pydicom), into .whl/
# (git-ignored via .git/info/exclude), for Python 3.12 on x86-64. Versions are those of .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
for spec in keras==3.15.1 namex==0.1.0 optree==0.20.0 optuna==5.0.0 alembic==1.20.1 colorlog==6.12.0 \
            mako==1.4.3 sqlalchemy==2.1.9 greenlet plotly==7.1.0 pydicom==3.0.2; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${PLATFORMS[@]}" -d .whl "$spec"
done
du -sh .whl
