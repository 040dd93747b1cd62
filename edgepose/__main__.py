"""``python -m edgepose`` — the same as the ``edgepose`` command."""

import sys

from edgepose.cli import main

sys.exit(main())
