"""Which floating-point precision the network computes in: ``--precision float32`` or ``mixed``.

On a GPU, mixed precision (layers compute in 16 bits on the tensor cores and keep float32
weights) is how the chip is meant to be used, and halves activation memory; the prepared GPU
check (``benchmarks/gpu_check.sh``) measures what it gains. Which 16-bit type depends on the
chip: bfloat16 (float32's range, fewer mantissa bits; no loss scaling needed) where the GPU
computes it natively (NVIDIA compute capability 8.0 and later: A100, H100, H200, RTX 30xx/40xx),
float16 (with Keras' loss scaling) on older GPUs, bfloat16 on CPUs (oneDNN). float32 stays the
default: on a CPU, 16-bit compute is rarely faster. Measured on the embedded sample at 64 px on
CPU, mixed precision keeps a feature-extraction trial's validation AUROC within 0.01 of float32
(``tests/training_tests/test_precision.py``).

The classifier's output layer always computes in float32, so the sigmoid and the loss stay exact;
feature and spatial banks made in another precision are other files (the policy is part of their
folder name), so a mixed study never reads float32 features or the other way round.
"""

from __future__ import annotations

from sweep.errors import OCLError

__all__ = ["PRECISIONS", "dtype_policy", "parse_precision", "use_precision"]

PRECISIONS = ("float32", "mixed")


def parse_precision(text: str) -> str:
    """``--precision``: ``float32`` or ``mixed`` (any case)."""
    word = str(text).strip().lower()
    if word not in PRECISIONS:
        raise OCLError(f"--precision {text}: pass float32 or mixed")
    return word


def dtype_policy(precision: str, gpu_capability: tuple[int, int] | None) -> str:
    """The Keras dtype policy for ``precision`` on this device.

    Args:
        precision: ``float32`` or ``mixed``.
        gpu_capability: the GPU's CUDA compute capability, e.g. ``(9, 0)`` for an H200; None on a CPU.
    """
    if parse_precision(precision) == "float32":
        return "float32"
    if gpu_capability is None or tuple(gpu_capability) >= (8, 0):
        return "mixed_bfloat16"
    return "mixed_float16"


def use_precision(precision: str) -> str:
    """Set Keras' global dtype policy for ``--precision`` on this process's device (before any
    model is built); returns the policy's name."""
    from sweep._keras import backend_gpu_capability, keras_module

    policy = dtype_policy(precision, backend_gpu_capability() if parse_precision(precision) == "mixed" else None)
    keras_module().config.set_dtype_policy(policy)
    return policy
