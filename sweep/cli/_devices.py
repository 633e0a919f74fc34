"""``ocl devices``: the GPUs of this machine, and which of them the Keras backend can train on."""

from __future__ import annotations

import os

import typer

from sweep.cli._common import FormatOption, OutputFormat, console, err_console, new_table, print_json


def devices(format: FormatOption = OutputFormat.table) -> None:
    """Each GPU the driver lists (index, name, memory) and whether the Keras backend sees it.

    A GPU the driver lists but the backend cannot see (no CUDA libraries, a CPU-only build,
    CUDA_VISIBLE_DEVICES) would leave a sweep on the CPU; `ocl sweep` refuses such a worker, and
    this command exits with code 1. Example: KERAS_BACKEND=jax ocl devices
    """
    from sweep._keras import backend_gpus, backend_name
    from sweep.study import driver_gpus

    listed, backend = driver_gpus(), backend_name()
    seen = backend_gpus()
    usable = bool(seen) or not listed
    if format is OutputFormat.json:
        print_json(
            {
                "backend": backend,
                "driver_gpus": [{"index": g.index, "name": g.name, "memory_mib": g.memory_mib} for g in listed],
                "backend_gpus": seen,
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            }
        )
    else:
        _print_table(listed, seen, backend)
    if not usable:
        raise typer.Exit(1)


def _print_table(listed, seen: list[str], backend: str) -> None:
    if listed:
        table = new_table("GPUs the driver lists (nvidia-smi)", "GPU", "name", "memory", text=("name",))
        for gpu in listed:
            table.add_row(str(gpu.index), gpu.name, f"{gpu.memory_mib / 1024:.0f} GiB")
        console.print(table)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
    if seen:
        console.print(f"the {backend} backend sees {len(seen)} GPU(s){where}: {', '.join(seen)}", highlight=False)
    elif listed:
        err_console.print(
            f"error: the {backend} backend sees none of these GPUs{where}, so trials would run on the CPU; install the "
            "GPU build (pip install -e '.[gpu]': TensorFlow with its CUDA libraries) or pass --devices cpu",
            highlight=False,
        )
    else:
        console.print(
            f"no GPU: nvidia-smi lists none and the {backend} backend sees none{where}; ocl sweep runs CPU workers "
            "(--workers N shares the cores)",
            highlight=False,
        )
