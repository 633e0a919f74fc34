"""Import Keras once, quietly.

TensorFlow's C++ side prints a screen of log lines on import and on first device probe (CUDA
probing, oneDNN notes) that bury the tool's own output, and recent versions ignore
``TF_CPP_MIN_LOG_LEVEL`` for them. So the import and the device set-up run with file descriptor
2 pointed at a temporary file, whose contents are shown only if the import fails or after
``configure(show_logs=True)`` (``ocl --debug``). Modules that need Keras first get it from
:func:`keras_module`; ``sweep.model._backbone`` then imports ``keras.applications`` directly.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

_ready = False
_threads = 0
_show_logs = False
_gpu_share = 1.0


def configure(*, threads: int | None = None, show_logs: bool | None = None, gpu_share: float | None = None) -> None:
    """Set how Keras starts in this process; call before the first :func:`keras_module`.

    Args:
        threads: TensorFlow's intra- and inter-op threads (0: all cores). Several CPU workers on
            one machine share the cores instead of each grabbing all of them.
        show_logs: show TensorFlow's import-time log lines (``ocl --debug``).
    """
    global _threads, _show_logs, _gpu_share
    if threads is not None:
        if threads < 0:
            raise ValueError(f"threads={threads}: expected 0 (all cores) or more")
        _threads = threads
    if show_logs is not None:
        _show_logs = show_logs
    if gpu_share is not None:
        if not 0 < gpu_share <= 1:
            raise ValueError(f"gpu_share={gpu_share}: expected a share of one GPU's memory, above 0 and at most 1")
        _gpu_share = gpu_share


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    if _show_logs:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def keras_module() -> ModuleType:
    global _ready
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if not _ready:
        with _quiet_stderr():
            import keras

            if keras.backend.backend() == "tensorflow":
                _tensorflow_setup()
            elif keras.backend.backend() == "torch" and _gpu_share < 1:
                _torch_setup()
        _ready = True
    import keras

    return keras


def _torch_setup() -> None:
    """Cap a worker that shares its GPU with others to its share of the memory."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(_gpu_share)


def _tensorflow_setup() -> None:
    """Grow GPU memory on demand, so one process per GPU never grabs a neighbour's memory."""
    import tensorflow as tf  # the one place outside the input pipeline that touches TensorFlow

    tf.get_logger().setLevel("ERROR")
    if _threads:  # several CPU workers share the cores instead of each grabbing all of them
        tf.config.threading.set_intra_op_parallelism_threads(_threads)
        tf.config.threading.set_inter_op_parallelism_threads(_threads)
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process
            pass


BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras backends OCL's model code runs on (``KERAS_BACKEND``, ``ocl sweep --backend``)."""


def backend_name() -> str:
    """The Keras backend this process uses (``KERAS_BACKEND``, default ``tensorflow``)."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def backend_gpu_capability() -> tuple[int, int] | None:
    """The CUDA compute capability of the backend's first GPU, e.g. ``(9, 0)``; None without a GPU
    (or when the backend does not say)."""
    backend = backend_name()
    if not backend_gpus():
        return None
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
            capability = details.get("compute_capability")
            return tuple(int(v) for v in capability) if capability else None
        if backend == "jax":
            import jax

            gpu = next(d for d in jax.devices() if d.platform in ("gpu", "cuda"))
            return tuple(int(v) for v in str(gpu.compute_capability).split(".")[:2])
        if backend == "torch":
            import torch

            return tuple(torch.cuda.get_device_capability(0))
    except (AttributeError, StopIteration, ValueError):
        return None
    return None


def backend_gpus() -> list[str]:
    """The GPUs the Keras backend itself sees in this process, each as ``NAME`` (e.g. ``NVIDIA H200``).

    ``nvidia-smi`` can list a GPU that the framework cannot use (no CUDA libraries, a CPU-only
    build, ``CUDA_VISIBLE_DEVICES`` hiding it), and a framework without its GPU trains on the CPU
    without a word. This asks the framework.
    """
    backend = backend_name()
    keras_module()  # the quiet import, and TensorFlow's memory growth, before any device is touched
    if backend == "tensorflow":
        import tensorflow as tf

        devices = tf.config.list_physical_devices("GPU")
        return [str(tf.config.experimental.get_device_details(d).get("device_name", d.name)) for d in devices]
    if backend == "jax":
        import jax

        return [str(getattr(d, "device_kind", d)) for d in jax.devices() if d.platform in ("gpu", "cuda", "rocm")]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def device_in_use() -> str:
    """What trials in this process actually train on: ``gpu (NAME)``, or ``cpu``, as the backend says."""
    gpus = backend_gpus()
    return f"gpu ({gpus[0]})" if gpus else "cpu"


def input_gradient(model: Any, inputs: Any, direction: Any) -> Any:
    """The gradient of ``sum(model(inputs) @ direction)`` with respect to ``inputs``, as numpy.

    Keras 3 has no backend-neutral gradient, so this is the one place that asks the backend for
    one: ``tf.GradientTape``, ``jax.grad`` or ``torch.autograd``. Saliency maps (Grad-CAM) need it;
    training does not (Keras' own ``fit`` differentiates). ``direction`` (one weight per model
    output) picks what is differentiated, e.g. one output's logit from the last hidden layer.
    """
    import numpy as np

    keras = keras_module()
    x = np.asarray(inputs, np.float32)
    weights = np.asarray(direction, np.float32)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            total = tf.reduce_sum(tf.cast(model(tensor, training=False), tf.float32) * weights)
        return tape.gradient(total, tensor).numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(values: Any) -> Any:
            return jnp.sum(jnp.asarray(model(values, training=False), jnp.float32) * weights)

        return np.asarray(jax.grad(total)(jnp.asarray(x)))
    if backend == "torch":
        import torch

        tensor = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        out = model(tensor, training=False).float()
        (out * torch.as_tensor(weights, device=out.device)).sum().backward()
        return tensor.grad.detach().cpu().numpy()
    raise ValueError(f"KERAS_BACKEND={backend}: OCL's saliency maps run on {', '.join(BACKENDS)}")
