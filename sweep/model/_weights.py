"""Which weights a DenseNet-121 starts from, and the one name each is stored under.

``--weights`` (and ``weights`` in a study file) takes one of three things:

* ``imagenet``: Keras' published ImageNet weights;
* ``none``: random initialisation, seeded, so every process builds the same network;
* a path to a local weights file (``.weights.h5``, Keras' ``.h5``/``.hdf5`` or a whole ``.keras``
  model), for machines without internet or for weights of one's own.

The two words are case-insensitive (``NONE`` is ``none``). ``random`` is refused, not taken as
a second name for ``none``: a network stored under two names would split its trials and its
dictionary rows in two, so the refusal says to pass ``none`` instead.

:attr:`Weights.label` is the canonical name that trials (``ocl:weights``) and the OCL dictionary
store and filter by: ``imagenet``, ``none`` or the weights file's absolute path. Databases written
before this module used the same convention, so they read unchanged.

:func:`parse_weights` is the strict parser for weights a command will load (the file must exist
and be a Keras weights file). :func:`weights_label` is its lenient twin for *filters* over stored
rows, where the file may be gone: it never reads a file, and keeps text that names no file.

Nothing here imports Keras: the dictionary's read-only commands use it and stay fast.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sweep.errors import OCLError

__all__ = [
    "IMAGENET_FILE",
    "IMAGENET_MD5",
    "KINDS",
    "WEIGHT_SUFFIXES",
    "Weights",
    "parse_weights",
    "shared_weights_name",
    "weights_label",
]

IMAGENET_FILE = "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_MD5 = "30ee3e1110167f948a6b9946edeeb738"
WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")
KINDS = ("imagenet", "none", "file")


@dataclass(frozen=True)
class Weights:
    """Which weights to load: ``kind`` is ``imagenet``, ``none`` or ``file`` (then ``path`` names it).

    A file's path is made absolute on construction, so :attr:`label` never depends on the working
    directory. ``seed`` seeds a random initialisation; it is not part of the label.
    """

    kind: str
    path: Path | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Weights kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if (self.kind == "file") != (self.path is not None):
            raise ValueError(f"Weights kind {self.kind!r}: a path is required for 'file' and only for it")
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path).expanduser().resolve())

    @property
    def label(self) -> str:
        """The canonical name trials and the dictionary store: ``imagenet``, ``none`` or the file's absolute path."""
        return str(self.path) if self.kind == "file" else self.kind

    @property
    def identity(self) -> str:
        """The exact weights, for cache keys: the ImageNet file's hash, the random seed, or a hash of the file's bytes."""
        if self.kind == "imagenet":
            return f"imagenet-{IMAGENET_MD5[:12]}"
        if self.kind == "none":
            return f"none-seed{self.seed}"
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:  # type: ignore[arg-type]
            while block := handle.read(1 << 22):
                digest.update(block)
        return f"file-{digest.hexdigest()[:12]}"


def _word(text: str) -> str | None:
    """``imagenet`` or ``none`` when ``text`` is one of the two words (any case), else None; refuses ``random``."""
    word = text.strip().lower()
    if word in ("imagenet", "none"):
        return word
    if word == "random":
        raise OCLError(f"--weights {text}: 'random' is not a weights name; pass none for random initialisation")
    return None


def parse_weights(text: str, *, seed: int = 0) -> Weights:
    """Parse ``--weights``: ``imagenet``, ``none`` or the path to an existing Keras weights file.

    Raises:
        OCLError: for ``random`` (use ``none``), a path that is no file, or a file without a Keras
            weights suffix.
    """
    word = _word(text)
    if word is not None:
        return Weights(word, seed=seed)
    path = Path(text).expanduser()
    if not path.is_file():
        raise OCLError(f"--weights {text}: no such file; pass imagenet, none, or the path to a DenseNet-121 weights file")
    if not path.name.lower().endswith(WEIGHT_SUFFIXES):
        raise OCLError(f"--weights {text}: not a Keras weights file; expected one of {', '.join(WEIGHT_SUFFIXES)}")
    return Weights("file", path=path, seed=seed)


def weights_label(text: str) -> str:
    """The stored label that a ``--weights`` *filter* means; lenient, unlike :func:`parse_weights`.

    ``imagenet`` and ``none`` in any case become their word; a path to an existing file becomes its
    absolute path; any other text is kept as given, so the absolute path of a file deleted since
    still finds its rows (and a typo finds none, which the caller reports).

    Raises:
        OCLError: for ``random``, refused here as in :func:`parse_weights`.
    """
    word = _word(text)
    if word is not None:
        return word
    path = Path(text).expanduser()
    return str(path.resolve()) if path.is_file() else text


def shared_weights_name(label: str) -> str:
    """A weights label as pages and exports made to be shared show it: ``imagenet``, ``none``, or a
    weights file's name without its folders (which name users and machines)."""
    return Path(label).name if ("/" in label or "\\" in label) else label
