"""The peers: cleanvision and imagededup, pinned in their own venv and run by
bench/peers_runner.py, so neither their dependencies nor their imports touch Conveyor's venv.

How their results are scored lives in ``accuracy``; this module only installs and runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .stack import ROOT

PEERS_VENV = ROOT / ".stack" / "bench-peers-venv"
PEERS_RUNNER = ROOT / "bench" / "peers_runner.py"
# cleanvision with every dependency pinned (as resolved by pip for Python 3.11), plus what
# imagededup's hashing needs (PyWavelets, SciPy, scikit-learn, tqdm, Pillow, matplotlib).
PEER_PINS = (
    "cleanvision==0.3.7",
    "ImageHash==4.3.2",
    "pillow==13.0.0",
    "numpy==2.4.6",
    "pandas==3.1.1",
    "matplotlib==3.11.2",
    "contourpy==1.3.3",
    "cycler==0.12.1",
    "fonttools==4.68.0",
    "kiwisolver==1.5.1",
    "packaging==26.4",
    "pyparsing==3.3.3",
    "python-dateutil==4.0.0",
    "tzdata==2026.6",
    "tabulate==0.10.0",
    "tqdm==4.70.1",
    "fsspec==2026.9.0",
    "PyWavelets==1.9.0",
    "scipy==1.17.1",
    "scikit-learn==1.9.1",
    "joblib==1.6.0",
    "threadpoolctl==3.8.0",
    "narwhals==2.29.0",
    "cloudpickle==3.1.3",
)
# Installed with --no-deps: its declared torch + torchvision pull about 3 GB of CUDA wheels
# (torch 539 MB, nvidia-cudnn 519 MB, cublas 405 MB, triton 286 MB, ...; PyPI has no CPU-only
# torch). Only its hashing module is used, with the torch-importing modules stubbed.
IMAGEDEDUP_PIN = "imagededup==0.3.3.post2"
PEER_NOTES = {
    "cleanvision": "cleanvision 0.3.7, default issue types and thresholds, n_jobs default (all "
    "cores); files PIL cannot open are left out first (cleanvision raises on them)",
    "imagededup": "imagededup 0.3.3.post2 PHash (64-bit), max_distance_threshold 10 (default), "
    "installed --no-deps without torch; imagededup.methods.cnn and imagededup.utils.models "
    "stubbed in sys.modules (hashing only)",
}


def ensure_peers() -> tuple[Path | None, str]:
    """The peers' venv python, installing the pinned peers on first use; or None and why."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".bench-pins"
    wanted = "\n".join([*PEER_PINS, IMAGEDEDUP_PIN])
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python, ""
    print(f"installing cleanvision and imagededup into {PEERS_VENV}...", flush=True)
    creator = shutil.which("python3") or sys.executable
    steps = [
        [creator, "-m", "venv", str(PEERS_VENV)],
        [str(python), "-m", "pip", "install", "-q", *PEER_PINS],
        [str(python), "-m", "pip", "install", "-q", "--no-deps", IMAGEDEDUP_PIN],
    ]
    for step in steps:
        if step[0] == creator and python.exists():
            continue
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"'{' '.join(step[-2:])}' failed: {' | '.join(tail)}"
    stamp.write_text(wanted)
    return python, ""


def run_peer(
    python: Path | None, why: str, tool: str, paths: list[Path], prefilter: bool = False
) -> dict[str, Any]:
    """A peer's results on ``paths`` (``{"na": reason}`` when it cannot run)."""
    if python is None:
        return {"na": f"not installed: {why}"}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as listing:
        json.dump([str(p) for p in paths], listing)
    command = [str(python), str(PEERS_RUNNER), tool, listing.name]
    if prefilter:
        command.append("--prefilter")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    finally:
        os.unlink(listing.name)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"na": f"{tool} failed: {' | '.join(tail)}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summary(cleanvision: dict[str, Any]) -> dict[str, Any]:
    """What the figures record about the peers: venv, pins, settings, files PIL could not open
    (``cleanvision`` is its result on the accuracy corpus)."""
    return {
        "venv": str(PEERS_VENV.relative_to(ROOT)),
        "pins": [*PEER_PINS, f"{IMAGEDEDUP_PIN} (--no-deps)"],
        "notes": PEER_NOTES,
        "unreadable_by_pil": len(cleanvision.get("unreadable", {})),
    }
