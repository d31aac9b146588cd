"""The old name of :mod:`lessonlib.memory_shares`, kept working for one release: every name read here
is read there."""

import warnings
from typing import Any

from . import memory_shares

warnings.warn("lessonlib.binder is now lessonlib.memory_shares", DeprecationWarning, stacklevel=2)


def __getattr__(name: str) -> Any:
    return getattr(memory_shares, name)
