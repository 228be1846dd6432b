"""``python -m spacetime_sched``: see :mod:`spacetime_sched._cli`."""

from __future__ import annotations

import sys

from ._cli import main

sys.exit(main())
