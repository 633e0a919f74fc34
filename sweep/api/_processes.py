"""The entry points of the processes a sweep starts: a worker per device and the cache builder.

:class:`~sweep.study.WorkerPool` starts these functions in fresh interpreters (so they live at
module level); ``ocl worker`` calls :func:`run_worker` and :func:`check_gpu` directly.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sweep.errors import OCLError
from sweep.storage import open_storage
from sweep.study import (
    Device,
    SweepSettings,
    load_study,
    records,
)


def run_worker(
    storage_url: str, study_name: str, *, device: str = "cpu", worker_index: int = 0, target: int | None = None
) -> int:
    """Join a running study from this process (it loads TensorFlow); returns trials finished here.

    Every finished trial also updates the OCL dictionary. For GPU work, start one process per
    GPU with ``CUDA_VISIBLE_DEVICES`` set before the import, as ``ocl worker --device N`` does.
    """
    from layers_index import dictionary_callback
    from sweep.study import run_worker as _run_worker

    _adopt_study_backend(storage_url, study_name)
    return _run_worker(
        storage_url,
        study_name,
        device=device,
        worker_index=worker_index,
        target=target,
        callbacks=[dictionary_callback(storage_url)],
    )


def _adopt_study_backend(storage_url: str, study_name: str) -> None:
    """A worker that joins without ``KERAS_BACKEND`` runs the backend the study records (before Keras loads)."""
    import os

    if "KERAS_BACKEND" in os.environ or "keras" in sys.modules:
        return
    backend = load_study(open_storage(storage_url, heartbeat=False), study_name).user_attrs.get(records.BACKEND)
    if backend:
        os.environ["KERAS_BACKEND"] = backend


def worker_process(
    storage_url: str,
    study_name: str,
    *,
    device: str,
    worker_index: int,
    threads: int,
    gpu: int | None = None,
    gpu_share: float = 1.0,
) -> int:
    """One worker process as :class:`~sweep.study.WorkerPool` starts it; returns its exit code.

    Keras is configured (``threads`` CPU threads) before it loads; a user mistake is one
    ``error:`` line on stderr (the worker's log) and exit code 2, Ctrl-C exit code 130.
    """
    from sweep._keras import configure

    configure(threads=threads, gpu_share=gpu_share)
    try:
        check_gpu(gpu)
        run_worker(storage_url, study_name, device=device, worker_index=worker_index)
    except OCLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def check_gpu(gpu: int | None) -> None:
    """In a process given GPU ``gpu`` (None: a CPU worker), refuse unless its Keras backend sees
    exactly that one GPU: never train on the CPU while the study says ``gpu:N``.

    Raises:
        OCLError: which GPU, which backend, and how to fix it.
    """
    if gpu is None:
        return
    from sweep._keras import backend_gpus, backend_name

    Device("gpu", gpu).check_backend_sees_it(backend_name(), backend_gpus())


def prepare_process(settings_json: str, error_file: str, notes_file: str, gpu: int | None = None) -> int:
    """Build a sweep's caches in a child process (the parent never loads TensorFlow); returns its exit code.

    A user mistake's one line goes to ``error_file`` for the parent to report once (exit code 2);
    the caches' lines for the user go to ``notes_file``, printed by the parent after its plan.
    """
    from sweep.study import prepare

    try:
        check_gpu(gpu)  # before any cache or study is written: a GPU the backend cannot see is refused here
        lines = prepare(SweepSettings.from_json(settings_json))
    except OCLError as exc:
        Path(error_file).write_text(str(exc))
        return 2
    Path(notes_file).write_text("".join(f"{line}\n" for line in lines))
    return 0
