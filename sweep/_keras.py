"""Import Keras once, quietly.

TensorFlow's C++ side prints a screen of log lines on import and on first device probe (CUDA
probing, oneDNN notes) that bury the tool's own output, and recent versions ignore
``TF_CPP_MIN_LOG_LEVEL`` for them. So the import and the device set-up run with file descriptor
2 pointed at a temporary file, whose contents are shown only if the import fails or when
``OCL_DEBUG`` is set. Every module that needs Keras imports it through :func:`keras_module`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

_ready = False


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    if os.environ.get("OCL_DEBUG"):
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
        _ready = True
    import keras

    return keras


def _tensorflow_setup() -> None:
    """Grow GPU memory on demand, so one process per GPU never grabs a neighbour's memory."""
    import tensorflow as tf  # the one place outside the input pipeline that touches TensorFlow

    tf.get_logger().setLevel("ERROR")
    threads = int(os.environ.get("OCL_THREADS", "0"))
    if threads:  # several CPU workers share the cores instead of each grabbing all of them
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process
            pass
