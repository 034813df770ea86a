"""``python -m mmsurv`` is the ``mmsurv`` command."""

import sys

from .cli import main

sys.exit(main())
