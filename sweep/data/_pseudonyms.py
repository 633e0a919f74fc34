"""Patient IDs as keyed pseudonyms, so nothing OCL stores or shares names a patient.

A hospital's DICOM ``PatientID`` is often its medical record number, and the storage, the reports
and the dictionary are made to be shared. So every patient ID is replaced, the moment a dataset is
read (after its split is drawn, so splits stay what they were), by ``p`` and 16 hex digits of
HMAC-SHA256 under a secret key. The same patient always gets the same pseudonym under one key, so
patient-wise splits, bootstrap resamples and leakage checks work unchanged; without the key, a
pseudonym cannot be turned back into an ID, nor checked against a guessed one.

The key is 32 random bytes in ``pseudonym.key`` beside the cache folder (``studies/pseudonym.key``
for the default ``studies/cache``; next to ``OCL_CACHE_DIR`` when that moves it; mode 0600), made
on first use; ``OCL_PSEUDONYM_KEY_FILE`` names another file. Deleting the caches keeps the key. It never enters the storage:
a study records only a fingerprint of it (a hash that reveals nothing about the key), so a worker
on another machine with another key is refused instead of scoring other pseudonyms. Workers of
one study on several machines share the key file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import pandas as pd

from sweep._env import pseudonym_key_file
from sweep.errors import OCLError

__all__ = ["KEY_FILE", "key_fingerprint", "pseudonym_key", "pseudonym_key_path", "pseudonymise"]

KEY_FILE = "pseudonym.key"


def pseudonym_key_path() -> Path:
    """Where this process's key is: ``OCL_PSEUDONYM_KEY_FILE``, else ``pseudonym.key`` beside the cache folder."""
    return pseudonym_key_file()


def pseudonym_key() -> bytes:
    """The key, made (32 random bytes, readable by its owner only) when there is none yet.

    Raises:
        OCLError: when the key file exists but is not a key (empty or truncated).
    """
    path = pseudonym_key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # exclusive create: two workers starting at once end up with the one key
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 32:
        raise OCLError(
            f"{path}: not a pseudonym key ({len(key)} bytes, expected 32); restore it from the machine that "
            "started the study, or delete it to start studies with a new key"
        )
    return key


def key_fingerprint(key: bytes) -> str:
    """A short public check of the key: equal keys give equal fingerprints; it does not reveal the key."""
    return hashlib.sha256(b"ocl pseudonym key fingerprint\0" + key).hexdigest()[:12]


def pseudonymise(patients: pd.Series, key: bytes) -> pd.Series:
    """Each patient ID as its pseudonym; an unknown patient (None or NaN) stays unknown."""
    cache: dict[str, str] = {}

    def one(patient: object) -> object:
        if patient is None or patient != patient:  # None or NaN: unknown
            return None
        text = str(patient)
        if text not in cache:
            cache[text] = "p" + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:16]
        return cache[text]

    return pd.Series([one(p) for p in patients], index=patients.index, dtype=object, name=patients.name)
