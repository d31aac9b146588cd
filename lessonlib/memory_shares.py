"""The course's memory design for Binder: what each notebook's kernel may keep once it has run.

mybinder.org gives JupyterLab and every kernel **2 GB together**, and closing a notebook's tab does
not stop its kernel. So the design is a budget: the Jupyter server, the local service (the one
process that holds a model: it makes the kernels' replies, and releases the model when idle or
training) and each notebook's kernel after *Run All*, with what it started. ``benchmarks/binder_walk.py`` measures the real walk (every notebook in order in one
JupyterLab, no kernel shut down); the test suite checks each notebook's kernel against its share
here when strict nbval has run it (``conftest.py``), so a notebook that starts keeping more memory
fails in CI before a learner's kernel dies.

Figures are resident memory (RSS, GB) of a kernel and its children just after its last cell, as
nbval runs it: an upper bound of its proportional share when several kernels share libraries.

>>> share("04-fine-tune-locally.ipynb")
1.25
>>> share("99-new.ipynb")
0.3
"""

from __future__ import annotations

#: Binder's memory for everything (GB).
BINDER_GB = 2.0
#: The Jupyter server with JupyterLab, idle (GB, measured).
SERVER_GB = 0.15
#: The local service with one model loaded (GB): it makes every notebook kernel's replies
#: (``lessonlib.models.generates_in_service``), serves the chat API and runs training jobs in a worker.
SERVICE_GB = 1.3
#: What a notebook not listed may keep (GB): lessonlib, widgets, charts, no model.
DEFAULT_SHARE_GB = 0.3
#: Each notebook's share (GB RSS after Run All, with what it started but the shared service). Kernels
#: ask the service for replies and for their charts' images (``lessonlib.plots``: no matplotlib, about
#: 40 MB, in any kernel), import no torch unless they train, and end by giving back their models and
#: token encodings (``models.unload()``, about 65 MB for tiktoken's o200k_base). The light kernels keep
#: 0.06-0.10 GB; their shares sit 0.03-0.04 GB above that, less than matplotlib would add. 04 trains in
#: its kernel (to show TRL's code; its second run too, rather than a child holding the libraries twice)
#: and keeps the libraries it imported and the heap they grew, which only the end of the process gives
#: back: its last cell asks the Jupyter server to shut it down (``jupyter.shut_down_this_kernel``), so in
#: JupyterLab it keeps nothing. nbval runs it with no server: its share is what it holds before that.
KERNEL_SHARE_GB = {
    "00": 0.15,
    "01": 0.1,
    "02": 0.1,
    "03": 0.12,
    "04": 1.25,
    "05": 0.1,
    "06": 0.14,
    "07": 0.15,
    "08": 0.14,
}


#: What tools run in a notebook's kernel after its last cell, before they save or measure it
#: (``tests/execute_notebooks.py``, ``conftest.py``, ``benchmarks/binder_walk.py``): it waits for the
#: work the notebook's views left running in the background (the data-size study of notebook 08:
#: :func:`lessonlib.widgets.wait_for_background`), and imports nothing the notebook did not.
AFTER_RUN_ALL = """\
import sys as _sys
if "lessonlib.widgets.static" in _sys.modules:
    _sys.modules["lessonlib.widgets.static"].wait_for_background()
del _sys
"""


def share(notebook: str) -> float:
    """The memory (GB) the kernel of ``notebook`` (a file name starting with its number) may keep."""
    return KERNEL_SHARE_GB.get(notebook[:2], DEFAULT_SHARE_GB)
