"""``python -m dgs <command> …``: the same as the ``dgs`` console script."""
import sys

from dgs.cli import main

sys.exit(main())
