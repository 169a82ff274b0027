"""CLI start-up benchmark: how long a user waits for `mcp-gateway` to answer.

Run by hand (not collected by pytest):

    .venv/bin/python benchmarks/bench_cli_start.py              # 7 runs of each command
    .venv/bin/python benchmarks/bench_cli_start.py --runs 15

Each command runs as a user runs it (a fresh `.venv/bin/mcp-gateway` process); the table shows the
fastest and the median wall time and the median CPU time (user + system, the process and its
children) per command. CPU time is the steadier figure on a shared, loaded machine; wall time is
what a user feels. Targets: `--help`, `--version` and `validate` well under 0.5 s; `call` against a
stdio server (two processes: the client and the server it starts) under 1.5 s.

To see where start-up time goes, and what a change of imports saves:

    .venv/bin/python -X importtime -m mcp_gateway --version 2> imports.log
    sort -t'|' -k2 -n imports.log | tail -20      # cumulative microseconds, largest last

Imports that matter: `mcp` (its __init__ loads the SDK's client and server, ~0.8 s), `mcp_types`,
`jsonschema` (with its metaschema registry), `pydantic`, `starlette`/`uvicorn`. Commands that
only read a config must not import the first or the last; `serve` over stdio must not import the
HTTP stack.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).parent / "mcp-gateway")
EXAMPLE = str(ROOT / "examples" / "gateway.yaml")

COMMANDS: dict[str, list[str]] = {
    "--help": [EXE, "--help"],
    "--version": [EXE, "--version"],
    "validate": [EXE, "validate", EXAMPLE],
    "render": [EXE, "render", EXAMPLE, "summarize", "--arg", "text=hello"],
    "call (stdio)": [
        EXE,
        "call",
        f"{EXE} serve {EXAMPLE}",
        "classify_ticket",
        "--arg",
        "ticket=charged twice",
    ],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str], runs: int) -> tuple[float, float, float]:
    """(fastest wall, median wall, median CPU) in seconds over `runs` runs."""
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        cpu = _children_cpu()
        started = time.perf_counter()
        done = subprocess.run(
            argv, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "NO_COLOR": "1"}
        )
        walls.append(time.perf_counter() - started)
        cpus.append(_children_cpu() - cpu)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")
    return min(walls), statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; {args.runs} runs each\n")
    print(f"{'command':<14} {'fastest':>8} {'median':>8} {'cpu':>8}")
    for name, argv in COMMANDS.items():
        fastest, median, cpu = measure(argv, args.runs)
        print(f"{name:<14} {fastest:>7.3f}s {median:>7.3f}s {cpu:>7.3f}s")


if __name__ == "__main__":
    main()
