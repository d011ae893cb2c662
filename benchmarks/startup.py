"""Start-up cost: import time of the CLI and of `connector serve`, and `connector --help`.

    python -m benchmarks.startup [--rounds 5]

Each figure is the median of `--rounds` fresh interpreters (`python -X importtime`, whose
last line is the module's cumulative import time; `connector --help` timed wall-clock).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONNECTOR = str(Path(sys.executable).with_name("connector"))


def import_seconds(module: str) -> float:
    """Cumulative import time of `module` in a fresh interpreter, in seconds."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and parts[-1].strip() == module:
            return int(parts[1]) / 1e6
    raise RuntimeError(f"{module} not in the import times")


def wall_seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures = {
        "import app.cli (every connector command)": lambda: import_seconds("app.cli"),
        "import app.main (connector serve, before uvicorn)": lambda: import_seconds("app.main"),
        "import app.config (settings of every command)": lambda: import_seconds("app.config"),
        "connector --help (whole process)": lambda: wall_seconds([CONNECTOR, "--help"]),
        "python -c pass (the interpreter alone)": lambda: wall_seconds([sys.executable, "-c", ""]),
    }
    for name, measure in figures.items():
        values = sorted(measure() for _ in range(args.rounds))
        print(f"{name:52s} median {statistics.median(values):6.3f} s  (min {values[0]:.3f})")


if __name__ == "__main__":
    main()
