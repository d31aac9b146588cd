"""The old name of :mod:`lessonlib.train.optimizations`, kept working for one release: every name read
here is read there."""

import warnings
from typing import Any

from . import optimizations

warnings.warn("lessonlib.train.measures is now lessonlib.train.optimizations", DeprecationWarning, stacklevel=2)


def __getattr__(name: str) -> Any:
    return getattr(optimizations, name)
