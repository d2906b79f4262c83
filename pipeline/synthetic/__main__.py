"""`python -m pipeline.synthetic --root data/synthetic --preset tiny [--seed N] [--dataset ...]`."""
import sys

from .cli import main

sys.exit(main())
