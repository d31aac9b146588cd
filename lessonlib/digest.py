"""The SHA-256 of a file, read in blocks: one helper for the model cache's manifest, the training runs'
model cards and the replay cache's keys.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> _ = path.write_text("hello")
>>> file_sha256(path)[:16]
'2cf24dba5fb0a30e'
"""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of the file at ``path``, read 4 MB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
