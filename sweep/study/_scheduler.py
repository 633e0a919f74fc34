"""Devices and worker processes: one process per GPU (or per CPU worker), one shared storage.

Each worker is a separate Python process running the entry function it is given (the API's
:func:`sweep.api.worker_process`, named by its module: this module spells no command), whose
``CUDA_VISIBLE_DEVICES`` is set before
TensorFlow loads, so it sees exactly one GPU (or none, for a CPU worker). The parent never loads
TensorFlow: it starts the workers, draws one progress bar from the storage, and on Ctrl-C asks
the workers to stop; finished trials stay in the storage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sweep.errors import OCLError

__all__ = ["Device", "GpuInfo", "WorkerPool", "driver_gpus", "parse_devices", "process_command", "usable_cores", "visible_gpus"]

_LAUNCH = (
    "import importlib, json, sys; module, name, arguments = sys.argv[1:4]; "
    "sys.exit(getattr(importlib.import_module(module), name)(**json.loads(arguments)))"
)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (taskset, a container's or a batch
    scheduler's cpuset), which ``os.cpu_count()`` ignores, else every core the machine has.

    Both how many threads a CPU worker gets and how many cores a lone worker leaves idle
    (:attr:`sweep.api.SweepPlan.idle_cores`) count these, so the two can never disagree.
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def process_command(entry: Callable[..., int | None], **arguments: object) -> list[str]:
    """The command line that runs ``entry(**arguments)`` in a fresh Python process and exits with
    what it returns: the function travels by its module and name, its arguments as JSON."""
    return [sys.executable, "-c", _LAUNCH, entry.__module__, entry.__qualname__, json.dumps(arguments)]


@dataclass(frozen=True)
class Device:
    """Where one worker runs: ``gpu`` with an index, or ``cpu``."""

    kind: str
    index: int | None = None

    @property
    def label(self) -> str:
        return f"gpu:{self.index}" if self.kind == "gpu" else "cpu"

    @classmethod
    def from_flag(cls, text: str | None) -> Device:
        """``ocl worker --device``: ``cpu`` (also the default), a GPU index ``0`` or ``gpu:0``."""
        if text is None or text.strip().lower() == "cpu":
            return cls("cpu")
        index = text.strip().lower().removeprefix("gpu:")
        if not index.isdigit():
            raise OCLError(f"--device {text}: pass a GPU index such as 0, or cpu")
        return cls("gpu", int(index))

    def check_backend_sees_it(self, backend: str, gpus: list[str]) -> None:
        """A GPU worker must see exactly its one GPU through its backend; a CPU worker sees none.

        Raises:
            OCLError: naming the GPU, the backend and the fix, before anything is written.
        """
        if self.kind != "gpu" or len(gpus) == 1:
            return
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")
        if not gpus:
            raise OCLError(
                f"--devices {self.index}: the {backend} backend sees no GPU in the worker for gpu:{self.index} "
                f"(CUDA_VISIBLE_DEVICES={visible}), so it would train on the CPU; install the GPU build "
                "(pip install -e '.[gpu]', TensorFlow with its CUDA libraries), check `ocl devices`, or pass --devices cpu"
            )
        raise OCLError(
            f"--devices {self.index}: the {backend} backend sees {len(gpus)} GPUs in the worker for gpu:{self.index} "
            f"(CUDA_VISIBLE_DEVICES={visible}); a worker must see exactly one: start it with CUDA_VISIBLE_DEVICES set "
            "to one GPU, as `ocl sweep --devices` does"
        )

    def worker_label(self, worker_index: int) -> str:
        """What a trial records as its device: ``gpu:N``, or ``cpu:W`` for CPU worker W."""
        return self.label if self.kind == "gpu" else f"cpu:{worker_index}"

    def threads(self, cpu_workers: int) -> int:
        """CPU threads for one worker: CPU workers share the cores; a GPU worker takes the default (0)."""
        return max(1, usable_cores() // max(1, cpu_workers)) if self.kind == "cpu" else 0

    def environment(self, cpu_workers: int) -> dict[str, str]:
        """What the worker's libraries must see before they load: its one GPU, or its CPU threads."""
        env = {"CUDA_VISIBLE_DEVICES": str(self.index) if self.kind == "gpu" else ""}
        if self.kind == "cpu":
            env["OMP_NUM_THREADS"] = str(self.threads(cpu_workers))
        return env


def visible_gpus() -> list[int]:
    """GPU indices this process may use, from CUDA_VISIBLE_DEVICES or ``nvidia-smi`` (no TensorFlow)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [int(x) for x in listed.split(",") if x.strip().isdigit()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [int(line) for line in out.split() if line.strip().isdigit()]


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as the driver lists it (``nvidia-smi``)."""

    index: int
    name: str
    memory_mib: int


def driver_gpus() -> list[GpuInfo]:
    """Every GPU ``nvidia-smi`` lists, with its name and memory; empty without the tool or a GPU.

    What the driver lists is not what a framework can use (see :func:`sweep._keras.backend_gpus`).
    """
    if shutil.which("nvidia-smi") is None:
        return []
    query = ["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    found = []
    for line in out.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
            found.append(GpuInfo(int(parts[0]), parts[1], int(parts[2])))
    return found


def parse_devices(devices: str | None, workers: int | None, gpus: list[int], *, per_gpu: int = 1) -> list[Device]:
    """Turn ``--devices``/``--workers``/``--workers-per-gpu`` into one Device per worker process.

    Default: one worker per visible GPU, else one CPU worker. ``--devices 0,1`` names GPUs (``0,0,1,1``
    puts two workers on each); ``--devices cpu,cpu`` or ``--workers 2`` asks for CPU workers;
    ``per_gpu`` (``--workers-per-gpu``) repeats every GPU worker that many times. A feature-extraction
    trial uses a sliver of a large GPU, so several workers per GPU keep it busy.
    """
    if per_gpu < 1:
        raise OCLError(f"--workers-per-gpu {per_gpu}: pass 1 or more")
    chosen = _parse_devices(devices, workers, gpus)
    if per_gpu > 1 and not any(d.kind == "gpu" for d in chosen):
        raise OCLError(f"--workers-per-gpu {per_gpu}: no GPU worker to repeat; for CPU workers pass --workers N")
    return [d for d in chosen for _ in range(per_gpu if d.kind == "gpu" else 1)]


def _parse_devices(devices: str | None, workers: int | None, gpus: list[int]) -> list[Device]:
    if devices and workers:
        raise OCLError(f"--devices {devices} and --workers {workers}: pass one of them (--devices cpu,cpu equals --workers 2)")
    if workers is not None:
        if workers < 1:
            raise OCLError(f"--workers {workers}: pass 1 or more")
        return [Device("cpu")] * workers
    if not devices:
        return [Device("gpu", i) for i in gpus] or [Device("cpu")]
    result: list[Device] = []
    for item in (part.strip().lower() for part in devices.split(",")):
        if item == "cpu":
            result.append(Device("cpu"))
        elif item.isdigit():
            if int(item) not in gpus:
                seen = ",".join(map(str, gpus))
                fix = f"pass --devices {seen}" if gpus else "this machine has no visible GPU; pass --devices cpu"
                raise OCLError(f"--devices {devices}: GPU {item} is not visible; {fix}")
            result.append(Device("gpu", int(item)))
        else:
            raise OCLError(
                f"--devices {devices}: {item!r} is neither a GPU index nor cpu; e.g. --devices 0,1 or --devices cpu,cpu"
            )
    return result


class WorkerPool:
    """Start one worker process per device and watch them until they end.

    ``worker_entry`` and ``prepare_entry`` are the functions the processes run (module-level, so a
    fresh interpreter can import them): ``worker_entry(storage_url=, study_name=, device=,
    worker_index=, threads=, gpu=)`` and ``prepare_entry(settings_json=, error_file=, notes_file=, gpu=)``;
    ``gpu`` is the GPU the process was given (None for a CPU worker), which it checks its backend sees.
    """

    def __init__(
        self,
        storage: str,
        study: str,
        devices: list[Device],
        log_dir: Path,
        *,
        worker_entry: Callable[..., int | None],
        prepare_entry: Callable[..., int | None],
        environment: dict[str, str] | None = None,
    ) -> None:
        self.storage, self.study, self.devices, self.log_dir = storage, study, devices, log_dir
        self.environment = dict(environment or {})  # e.g. KERAS_BACKEND: what every process it starts must see
        self.worker_entry, self.prepare_entry = worker_entry, prepare_entry
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    @property
    def cpu_workers(self) -> int:
        return sum(d.kind == "cpu" for d in self.devices)

    def command(self, index: int, device: Device) -> list[str]:
        return process_command(
            self.worker_entry,
            storage_url=self.storage,
            study_name=self.study,
            device=device.worker_label(index),
            worker_index=index,
            threads=device.threads(self.cpu_workers),
            gpu=device.index if device.kind == "gpu" else None,
            gpu_share=self.gpu_share(device),
        )

    def _env(self, device: Device) -> dict[str, str]:
        return {**os.environ, **self.environment, **device.environment(self.cpu_workers), **self._memory_share(device)}

    def gpu_share(self, device: Device) -> float:
        """The share of its GPU's memory a worker may take: 1 / the workers on that GPU."""
        return 1.0 / sum(d == device for d in self.devices) if device.kind == "gpu" else 1.0

    def _memory_share(self, device: Device) -> dict[str, str]:
        """Caps for workers sharing a GPU, set before their framework loads: JAX preallocates 75% of a
        GPU by default, so each gets its share of 90% instead (TensorFlow grows on demand, and PyTorch
        is capped in the worker by ``sweep._keras.configure(gpu_share=...)``)."""
        share = self.gpu_share(device)
        return {"XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 * share:.3f}"} if device.kind == "gpu" and share < 1 else {}

    def prepare(self, settings_json: str) -> tuple[int, str, list[str]]:
        """Check settings and build the image cache, feature banks and spatial banks once, in the
        foreground (its progress bars show), before the study is touched.

        Returns:
            The exit code; for a user mistake (code 2), its one-line message; and the lines the
            caches have for the user (which blocks the spatial bank holds, a full disk's note),
            for the caller to print after its plan.
        """
        with tempfile.TemporaryDirectory(prefix="ocl-prepare-") as folder:
            error_file, notes_file = Path(folder) / "error.txt", Path(folder) / "notes.txt"
            command = process_command(
                self.prepare_entry,
                settings_json=settings_json,
                error_file=str(error_file),
                notes_file=str(notes_file),
                gpu=self.devices[0].index if self.devices[0].kind == "gpu" else None,
            )
            code = subprocess.call(command, env=self._env(self.devices[0]))
            error = error_file.read_text().strip() if error_file.exists() else ""
            notes = notes_file.read_text().splitlines() if notes_file.exists() else []
            return code, error, notes

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for index, device in enumerate(self.devices):
            log = self.log_dir / f"{self.study.replace('/', '_')}-worker{index}.log"
            handle = open(log, "ab")
            self.processes.append(
                subprocess.Popen(self.command(index, device), env=self._env(device), stdout=handle, stderr=subprocess.STDOUT)
            )
            self.logs.append(log)

    def running(self) -> bool:
        return any(p.poll() is None for p in self.processes)

    def wait(self, tick: Callable[[], None], every: float = 1.0) -> list[int]:
        """Call ``tick`` every ``every`` seconds until all workers end; return their exit codes."""
        while self.running():
            tick()
            time.sleep(every)
        tick()
        return [p.returncode for p in self.processes]

    def interrupt(self, grace: float = 30.0) -> list[int]:
        """Ask workers to stop (SIGINT), then terminate any still running after ``grace`` seconds;
        returns the process IDs of those terminated (their trial may still read RUNNING)."""
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace
        terminated = []
        for p in self.processes:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.terminate()
                terminated.append(p.pid)
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        return terminated

    def failure_tail(self, lines: int = 8) -> str:
        """The last lines of the first failed worker's log, for the error message."""
        for p, log in zip(self.processes, self.logs):
            if p.returncode not in (0, None):
                text = log.read_text(errors="replace").strip().splitlines()
                return f"worker log {log}:\n" + "\n".join(text[-lines:])
        return ""
