"""Clean benchmark: accuracy per defect against cleanvision and imagededup, throughput, lookup.

Uses the generated corpus of bench/clean_corpus.py (built on first use) and prints its figures
side by side, each target next to its figure with PASS or MISS; writes them all to
bench/out/clean.json. Not a test: it asserts nothing.

1. Accuracy (``clean_bench.accuracy``): Conveyor's checks, duplicate logic and verdict run
   in-process on the labeled files in arrival order, scored per defect next to cleanvision and
   imagededup (``clean_bench.peers``, in their own venv), plus the video checks
   (bench/clean_video.py).
2. Throughput (``clean_bench.throughput``): uploads to verdicts through ingest, clean and audit
   started here, then a paced phase; CPU per image of the clean service and of the stack.
3. Near-duplicate lookup (``clean_bench.lookup``): refresh from Postgres and scan of a dataset's
   hashes at 10 k, 100 k and 1 M.
4. Realistic mix (``clean_bench.mix``): 1080p JPEG and PNG, 640x480, 4000x3000 JPEGs and a few
   videos end to end; files/s, MB/s, CPU per file by process, clean against the same analysis
   in-process. ``--mix-only`` runs this part alone and updates only ``mix`` in clean.json.

The tables are printed by ``clean_bench.report``; each module's docstring says what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import clean_corpus, clean_video  # noqa: E402
from bench.clean_bench import accuracy, lookup, mix, peers, report, throughput  # noqa: E402

OUT = ROOT / "bench" / "out"


def timed(label: str, action: Callable[[], Any]) -> Any:
    """Run ``action`` and say how long it took."""
    print(f"{label}...", flush=True)
    started = time.perf_counter()
    result = action()
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return result


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--throughput", type=int, default=1500, help="JPEGs for part 2")
    parser.add_argument("--uploads", type=int, default=0, help="upload only N (0 = all)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--files-per-request", type=int, default=8, help="files per upload request (part 2)"
    )
    parser.add_argument("--paced", type=int, default=300, help="JPEGs uploaded at a steady rate")
    parser.add_argument("--rate", type=float, default=20.0, help="uploads/s of the steady phase")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="index sizes, part 3")
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--load-budget", type=float, default=240, help="s for one index load")
    parser.add_argument("--probe-budget", type=float, default=60, help="s of probes per size")
    parser.add_argument("--skip-e2e", action="store_true", help="no services (part 2)")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--skip-lookup", action="store_true")
    parser.add_argument("--skip-video", action="store_true", help="no video corpus (part 1)")
    parser.add_argument("--mix-images", type=int, default=200, help="images of the mix, part 4")
    parser.add_argument("--mix-videos", type=int, default=6, help="videos of the mix, part 4")
    parser.add_argument("--skip-mix", action="store_true", help="no realistic mix (part 4)")
    parser.add_argument("--mix-only", action="store_true", help="part 4 alone")
    args = parser.parse_args()
    begun = time.perf_counter()
    if args.mix_only:
        mix_only(args, begun)
        return

    manifest = clean_corpus.build(args.throughput)
    corpus = clean_corpus.CORPUS
    files: list[dict[str, Any]] = manifest["files"]
    folder = corpus / manifest["images_dir"]
    paths = [folder / f["name"] for f in files]
    fast = [corpus / manifest["throughput_dir"] / n for n in manifest["throughput"]]

    python: Path | None
    if args.skip_peers:
        python, why = None, "skipped (--skip-peers)"
    else:
        python, why = peers.ensure_peers()
    results = timed(
        "1. Conveyor checks on the accuracy corpus", lambda: accuracy.run_conveyor(files, folder)
    )
    cv_result = timed(
        "   cleanvision on the accuracy corpus",
        lambda: peers.run_peer(python, why, "cleanvision", paths, prefilter=True),
    )
    idd_result = timed(
        "   imagededup on the accuracy corpus",
        lambda: peers.run_peer(python, why, "imagededup", paths),
    )
    scores = accuracy.figures(files, results, cv_result, idd_result)
    peer_walls = {
        "conveyor_cpu_s": sum(r["cpu_s"] for r in results.values()),
        "cleanvision_wall_s": cv_result.get("wall_s"),
        "imagededup_wall_s": idd_result.get("wall_s"),
    }
    if args.skip_video:
        video: dict[str, Any] = {"na": "skipped (--skip-video)"}
    else:
        video = timed("   Conveyor video checks on the video corpus", clean_video.run)

    local = timed(
        "2. decode and analysis cost in-process", lambda: throughput.in_process_costs(fast)
    )
    cv_fast = timed(
        "   cleanvision on the throughput JPEGs",
        lambda: peers.run_peer(python, why, "cleanvision", fast),
    )
    idd_fast = timed(
        "   imagededup on the throughput JPEGs",
        lambda: peers.run_peer(python, why, "imagededup", fast),
    )
    warmup = next(folder / f["name"] for f in files if f["label"] == "clean")
    if args.skip_e2e:
        e2e: dict[str, Any] = {"na": "skipped (--skip-e2e)"}
    else:
        paced = fast[len(fast) - args.paced :] if args.paced else []
        chosen = fast[: len(fast) - len(paced)]
        chosen = chosen[: args.uploads] if args.uploads else chosen
        e2e = timed(
            "   Conveyor end to end",
            lambda: throughput.end_to_end(
                chosen, warmup, args.concurrency, args.files_per_request, paced, args.rate
            ),
        )

    if args.skip_lookup:
        index: dict[str, Any] = {"na": "skipped (--skip-lookup)"}
    else:
        sizes = [int(s) for s in args.sizes.split(",")]
        asyncio.run(lookup.ensure_database())
        index = timed(
            "3. near-duplicate lookup",
            lambda: asyncio.run(
                lookup.lookup_bench(sizes, args.probes, args.load_budget, args.probe_budget)
            ),
        )

    if args.skip_mix:
        mixed: dict[str, Any] = {"na": "skipped (--skip-mix)"}
    else:
        mixed = mix_run(args)

    figures: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "corpus": {
            "path": str(corpus.relative_to(ROOT)),
            "params": manifest["params"],
            "labels": dict(Counter(f["label"] for f in files)),
        },
        "peers": peers.summary(cv_result),
        "accuracy": scores,
        "accuracy_run": peer_walls,
        "diagnosis": accuracy.diagnose(files, results, scores["conveyor"]),
        "video": video,
        "throughput": throughput.figures(local, e2e, cv_fast, idd_fast),
        "lookup": index,
        "mix": mixed,
    }
    targets: list[dict[str, Any]] = []
    report.print_accuracy(figures, targets)
    report.print_video(figures, targets)
    report.print_throughput(figures, targets)
    report.print_lookup(figures, targets)
    if "na" not in mixed:
        report.print_mix(mixed, targets)
    figures["targets"] = targets
    figures["runtime_s"] = time.perf_counter() - begun
    report.print_summary(targets, figures["runtime_s"])
    OUT.mkdir(exist_ok=True)
    (OUT / "clean.json").write_text(json.dumps(figures, indent=1, default=str))
    print(f"figures written to {(OUT / 'clean.json').relative_to(ROOT)}")


def mix_run(args: argparse.Namespace) -> dict[str, Any]:
    """Part 4's figures."""
    return dict(
        timed(
            "4. realistic mix",
            lambda: mix.run(
                args.mix_images,
                args.mix_videos,
                args.concurrency,
                args.files_per_request,
                args.skip_e2e,
            ),
        )
    )


def mix_only(args: argparse.Namespace, begun: float) -> None:
    """Part 4 alone: its figures replace ``mix`` in clean.json, the rest is kept."""
    mixed = mix_run(args)
    targets: list[dict[str, Any]] = []
    report.print_mix(mixed, targets)
    report.print_summary(targets, time.perf_counter() - begun)
    path = OUT / "clean.json"
    figures: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    figures["mix"] = mixed
    OUT.mkdir(exist_ok=True)
    path.write_text(json.dumps(figures, indent=1, default=str))
    print(f"figures written to {path.relative_to(ROOT)} (key mix)")


if __name__ == "__main__":
    main()
