"""``python -m lessonlib`` is the ``lessonlib`` command."""

import sys

from .cli import main

sys.exit(main())
