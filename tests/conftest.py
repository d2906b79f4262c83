"""Shared pytest setup: quiet, single-threaded numerics so xdist workers do not oversubscribe."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
