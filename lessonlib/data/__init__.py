"""The data doctor: read, validate, count, convert and split chat fine-tuning files.

Scope. OpenAI's chat fine-tuning format, one JSON object per line::

    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "...", "weight": 1}]}

with everything the current format allows: ``name``, ``weight`` (0 or 1, assistant messages),
``tool_calls`` and ``tool`` messages, legacy ``function_call``, top-level ``tools``,
``functions`` and ``parallel_tool_calls``, and content as a list of text parts.

:func:`validate` streams the file once, never stops at the first problem and never raises for bad
data: every problem becomes a :class:`Finding` with the line number, a stable ``code`` (see
:data:`CODES`) and a plain message. It also counts tokens exactly as the OpenAI cookbook does
(in batches, see :mod:`lessonlib.tokens`) and prices the training job (:mod:`lessonlib.costs`).
Memory stays flat as the file grows: lines are processed in chunks; only 8-byte fingerprints (for
duplicates), one integer per example (token lengths) and at most ``max_per_code`` stored findings
per code are kept.

>>> report = validate(split_path("recipes", "train"), model="gpt-4o-mini")   # doctest: +SKIP
>>> report.ok, report.examples, report.tokens.total                           # doctest: +SKIP
(True, 200, 25817)

Modules: :mod:`~lessonlib.data.checks` (one example), :mod:`~lessonlib.data.validation` (a whole file,
:class:`DataReport`), :mod:`~lessonlib.data.conversion` (formats, splits). Their public names are re-exported here.
"""

from __future__ import annotations

from ..corpora import split_path  # for notebooks: data.split_path
from .checks import (
    CODES,
    MESSAGE_KEYS,
    PROVIDER_MINIMUM,
    ROLES,
    SEVERITIES,
    TOP_LEVEL_KEYS,
    Finding,
    TokenStats,
    check_example,
    scan_sensitive,
)
from .conversion import FORMATS, convert, from_prompt_completion, split, to_hf_dataset, to_prompt_completion
from .validation import PARALLEL_BYTES, DataReport, iter_examples, read_examples, validate

__all__ = ["CODES", "FORMATS", "MESSAGE_KEYS", "PARALLEL_BYTES", "PROVIDER_MINIMUM", "ROLES", "SEVERITIES", "TOP_LEVEL_KEYS", "DataReport", "Finding", "TokenStats", "check_example", "convert", "from_prompt_completion", "iter_examples", "read_examples", "scan_sensitive", "split", "split_path", "to_hf_dataset", "to_prompt_completion", "validate"]
