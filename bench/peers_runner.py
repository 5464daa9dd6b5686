"""Run a peer tool (cleanvision or imagededup pHash) on a list of files and print JSON results.

Runs under the peers' own venv (``.stack/bench-peers-venv``, made by bench/clean.py), never the
project's, and imports nothing from Conveyor. Usage::

    python bench/peers_runner.py cleanvision FILES_JSON [--prefilter]
    python bench/peers_runner.py imagededup FILES_JSON

FILES_JSON holds a list of absolute paths, all in one folder, in arrival order. The last line
on stdout is one JSON object; everything the tools print goes to stderr.

cleanvision: ``Imagelab(filepaths=...).find_issues()`` with its default issue types and
parameters. It opens every file with PIL and raises on one it cannot open, so with
``--prefilter`` the runner first opens and loads each file with PIL (as cleanvision would) and
hands cleanvision only those that load; the others are listed under ``unreadable``.

imagededup: only its hashing module is used (``PHash().encode_images`` on the folder, then
``find_duplicates`` at its default ``max_distance_threshold`` of 10, with scores). The package
imports torch at import time through ``imagededup.methods.cnn`` and ``imagededup.utils.models``;
torch is not installed in the peers' venv (its CPU-only build is not on PyPI and the default
wheel pulls in about 3 GB of CUDA libraries), so those two modules are replaced by empty stubs
in ``sys.modules`` before the import. The hashing code path does not touch them.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import types
import warnings
from pathlib import Path
from typing import Any


def run_cleanvision(paths: list[str], prefilter: bool) -> dict[str, Any]:
    """cleanvision's per-file issue flags and duplicate sets."""
    from cleanvision import Imagelab  # type: ignore[import-not-found]  # peers venv only
    from PIL import Image  # type: ignore[import-not-found]  # peers venv only

    unreadable: dict[str, str] = {}
    sizes: dict[str, list[int]] = {}
    usable = paths
    prefilter_s = 0.0
    if prefilter:
        started = time.perf_counter()
        usable = []
        for path in paths:
            try:
                with Image.open(path) as image:
                    image.load()
                    sizes[Path(path).name] = list(image.size)
                usable.append(path)
            except Exception as error:
                unreadable[Path(path).name] = f"{type(error).__name__}: {error}"[:200]
        prefilter_s = time.perf_counter() - started
    started = time.perf_counter()
    lab = Imagelab(filepaths=usable)
    lab.find_issues()
    wall = time.perf_counter() - started
    issues = lab.issues
    flag_columns = [c for c in issues.columns if c.startswith("is_") and c.endswith("_issue")]
    flags: dict[str, list[str]] = {}
    for path, row in issues.iterrows():
        found = [c[3:-6] for c in flag_columns if bool(row[c])]
        flags[Path(str(path)).name] = found
    sets = {
        kind: [[Path(p).name for p in group] for group in lab.info[kind]["sets"]]
        for kind in ("exact_duplicates", "near_duplicates")
    }
    return {
        "tool": "cleanvision",
        "files": len(paths),
        "analyzed": len(usable),
        "wall_s": wall,
        "prefilter_s": prefilter_s,
        "unreadable": unreadable,
        "sizes": sizes,
        "flags": flags,
        "sets": sets,
    }


def run_imagededup(paths: list[str]) -> dict[str, Any]:
    """imagededup pHash: each file's duplicates within distance 10, with distances."""
    for name, attribute in (
        ("imagededup.methods.cnn", "CNN"),
        ("imagededup.utils.models", "CustomModel"),
    ):
        stub = types.ModuleType(name)
        setattr(stub, attribute, None)
        sys.modules[name] = stub
    from imagededup.methods import PHash  # type: ignore[import-not-found]  # peers venv only

    folder = Path(paths[0]).parent
    if any(Path(p).parent != folder for p in paths):
        raise SystemExit("imagededup reads one folder: all files must be in the same one")
    hasher = PHash(verbose=False)
    started = time.perf_counter()
    encodings = hasher.encode_images(image_dir=str(folder))
    encoded = time.perf_counter()
    duplicates = hasher.find_duplicates(encoding_map=encodings, scores=True)
    wall = time.perf_counter() - started
    wanted = {Path(p).name for p in paths}
    return {
        "tool": "imagededup",
        "files": len(paths),
        "analyzed": len(encodings),
        "wall_s": wall,
        "encode_s": encoded - started,
        "unreadable": sorted(wanted - set(encodings)),
        "duplicates": {
            name: [[other, int(distance)] for other, distance in found]
            for name, found in duplicates.items()
            if name in wanted
        },
    }


def main() -> None:
    """Parse the command line, run the tool with its output on stderr, print the JSON."""
    tool, files = sys.argv[1], sys.argv[2]
    paths: list[str] = json.loads(Path(files).read_text())
    warnings.simplefilter("ignore")
    with contextlib.redirect_stdout(sys.stderr):
        if tool == "cleanvision":
            result = run_cleanvision(paths, "--prefilter" in sys.argv[3:])
        elif tool == "imagededup":
            result = run_imagededup(paths)
        else:
            raise SystemExit(f"unknown tool {tool!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
