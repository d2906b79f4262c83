"""Stand-in action for a workflow target whose stage has not landed yet.

It exits non-zero with a message that names the target, the issue that tracks it, and the inputs
that are already prepared for it, so a user never mistakes it for a finished step.
"""
import sys


def main(argv: list[str]) -> int:
    target, tracked_by, *inputs = argv
    print(f"'{target}' is not available in this version of the toolkit yet: it is tracked as {tracked_by}.", file=sys.stderr)
    if inputs:
        print("Its inputs are prepared and will be used as they are:", file=sys.stderr)
        for path in inputs:
            print(f"  {path}", file=sys.stderr)
    # Also on stdout: Snakemake shows the job's stderr only through the log file.
    print(f"'{target}' is not available yet ({tracked_by}); see README, section 'Status'.")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
