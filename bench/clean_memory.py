"""Peak memory of clean's image analysis on decompression-bomb-sized rasters.

A 292 KB PNG can declare 9999 x 9999 pixels (just under the 100 MP bomb limit) and decode
to 300 MB. This runs clean's own ``analyze_image`` on such files from several threads at
once (as clean's analysis threads do), once without and once with a ``DecodeBudget``, each in
a fresh process, and prints the peak RSS above the process's baseline next to the floor: one
bare ``cv2.imdecode`` of the same file.

    .venv/bin/python bench/clean_memory.py [--threads 2] [--budget-mb 768]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIDE = 9999


def bomb_png() -> bytes:
    """A flat 9999 x 9999 PNG (compresses to a few hundred KB)."""
    import cv2
    import numpy as np

    ok, data = cv2.imencode(
        ".png", np.full((SIDE, SIDE, 3), 90, np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    assert ok
    return bytes(data.tobytes())


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, threads: int, budget_mb: int, path: str) -> None:
    """One measurement, in its own process so ru_maxrss starts from this run's baseline."""
    import cv2
    import numpy as np

    from services.clean.checks.budget import DecodeBudget
    from services.clean.checks.report import analyze_image

    data = Path(path).read_bytes()
    analyze_image(b"\x89PNG\r\n\x1a\n")  # import-time allocations before the baseline
    baseline = peak_mib()
    started = time.perf_counter()
    if mode == "decode":
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    else:
        budget = DecodeBudget(budget_mb * 1024 * 1024) if mode == "budget" else None
        workers = [
            threading.Thread(target=analyze_image, args=(data,), kwargs={"budget": budget})
            for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    print(
        json.dumps({"extra_mib": peak_mib() - baseline, "seconds": time.perf_counter() - started})
    )


def measure(mode: str, threads: int, budget_mb: int, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--threads",
            str(threads),
            "--budget-mb",
            str(budget_mb),
            "--file",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="concurrent analyses (default 2)")
    parser.add_argument("--budget-mb", type=int, default=768, help="decode budget (default 768)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.threads, args.budget_mb, args.file)
        return
    path = ROOT / "bench" / "out" / "bomb-9999.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(bomb_png())
    print(f"{SIDE}x{SIDE} PNG, {path.stat().st_size / 1024:.0f} KiB, {args.threads} at once")
    floor = measure("decode", 1, args.budget_mb, path)
    rows = [
        ("bare cv2.imdecode, one file (floor)", floor),
        (
            f"analyze_image x{args.threads}, no budget",
            measure("free", args.threads, args.budget_mb, path),
        ),
        (
            f"analyze_image x{args.threads}, budget {args.budget_mb} MiB",
            measure("budget", args.threads, args.budget_mb, path),
        ),
    ]
    print(f"{'run':<44} {'peak RSS above baseline':>24} {'x floor':>8} {'wall s':>7}")
    for name, row in rows:
        ratio = row["extra_mib"] / floor["extra_mib"]
        print(f"{name:<44} {row['extra_mib']:>20.0f} MiB {ratio:>8.2f} {row['seconds']:>7.1f}")


if __name__ == "__main__":
    main()
