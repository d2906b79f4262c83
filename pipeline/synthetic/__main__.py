"""`python -m pipeline.synthetic --root data/synthetic --preset tiny [--seed N] [--dataset ...]`."""
import sys

from .cli import console

sys.exit(console())
