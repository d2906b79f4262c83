"""Print the outputs a workflow target produced, one path per line with its size, for the user."""
import sys
from pathlib import Path


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def main(paths: list[str]) -> int:
    print("Outputs:")
    for name in paths:
        path = Path(name)
        target = path.parent if path.name in {"done", "manifest.parquet"} and path.parent.is_dir() else path
        print(f"  {target}  ({_size(target) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
