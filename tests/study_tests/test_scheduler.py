"""Devices and worker processes, as the scheduler lays them out (no GPU needed to check the layout)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sweep.errors import OCLError
from sweep.study import Device, WorkerPool, parse_devices


def _entry(**_: object) -> int:
    return 0


def test_several_workers_per_gpu_each_get_their_share_of_its_memory(tmp_path: Path):
    devices = parse_devices(None, None, [0, 1], per_gpu=2)
    assert devices == [Device("gpu", 0), Device("gpu", 0), Device("gpu", 1), Device("gpu", 1)]
    assert parse_devices("0,0,1", None, [0, 1]) == [Device("gpu", 0), Device("gpu", 0), Device("gpu", 1)]
    pool = WorkerPool("sqlite:///x.db", "s", devices, tmp_path, worker_entry=_entry, prepare_entry=_entry)
    environments = [pool._env(d) for d in devices]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in environments] == ["0", "0", "1", "1"]
    assert {e["XLA_PYTHON_CLIENT_MEM_FRACTION"] for e in environments} == {"0.450"}  # JAX would preallocate 75% each
    command = pool.command(1, devices[1])
    assert command[:2] == [sys.executable, "-c"] and command[3:5] == [__name__, "_entry"]
    assert json.loads(command[5]) == {
        "storage_url": "sqlite:///x.db",
        "study_name": "s",
        "device": "gpu:0",
        "worker_index": 1,
        "threads": 0,
        "gpu": 0,
        "gpu_share": 0.5,
    }


def test_a_gpu_worker_alone_on_its_gpu_gets_no_cap(tmp_path: Path):
    pool = WorkerPool(
        "sqlite:///x.db", "s", [Device("gpu", 0), Device("cpu")], tmp_path, worker_entry=_entry, prepare_entry=_entry
    )
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in pool._env(Device("gpu", 0)) or pool.gpu_share(Device("gpu", 0)) == 1.0
    assert pool.gpu_share(Device("gpu", 0)) == 1.0 and pool.gpu_share(Device("cpu")) == 1.0


@pytest.mark.parametrize(
    ("devices", "workers", "per_gpu", "message"),
    [
        (None, None, 0, "--workers-per-gpu 0: pass 1 or more"),
        (None, 2, 2, "--workers-per-gpu 2: no GPU worker to repeat; for CPU workers pass --workers N"),
        ("cpu", None, 3, "--workers-per-gpu 3: no GPU worker to repeat"),
    ],
)
def test_workers_per_gpu_without_a_gpu_is_a_clear_error(devices, workers, per_gpu, message):
    with pytest.raises(OCLError, match=message.replace("(", r"\(")):
        parse_devices(devices, workers, [], per_gpu=per_gpu)
