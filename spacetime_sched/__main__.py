"""``python -m spacetime_sched``: see :mod:`spacetime_sched.cli`."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
