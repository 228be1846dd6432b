"""What every side-by-side benchmark shares: peers in throwaway venvs, JSON from subprocesses.

Each peer runs in its own virtual environment under ``.bench-venvs/<name>`` (created on first
use), in a subprocess that prints one JSON object as its last line. Not part of the library.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".bench-venvs"


def venv_python(name: str, packages: Sequence[str]) -> Path:
    """The Python of venv ``name`` with ``packages`` installed (made on first use)."""
    python = VENVS / name / "bin" / "python"
    if not python.exists():
        print(f"creating {VENVS / name} with {' '.join(packages)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def run_json(cmd: list[str], label: str, timeout: float) -> dict[str, Any] | None:
    """Run ``cmd`` in benchmarks/ and parse its last output line; None if it failed."""
    print(f"  {label} ...", end=" ", flush=True)
    try:
        out = subprocess.run(
            cmd, cwd=ROOT / "benchmarks", capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        print(f"timed out after {timeout} s")
        return None
    if out.returncode != 0:
        print("failed:\n" + out.stderr[-2000:])
        return None
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result))
    return result


def machine() -> str:
    """One line about this machine and its load, for the report."""
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average at start {load}"
    )
