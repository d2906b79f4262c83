"""Speed scripts, one per stage (not an installed package: ``python benchmarks/bench_x.py``).

Each script prints a table comparing the project's code with a reference implementation; the
references are plain functions that ``tests/test_bench_references.py`` checks against the project's
own results at a tiny size, so a quoted speed-up compares two things that agree.
"""
