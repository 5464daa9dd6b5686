"""Label Studio connector benchmark: tasks into Label Studio per second, annotations back.

Runs its own ingest and labeling-dispatch processes against the local stack and its Label
Studio (fresh database ``conveyor_bench_label_studio``, fresh consumer groups), and plays
ingest and clean on the topics for N synthetic cleaned images (``bench/labeling_dispatch.py``'s
``feed_events``) before the job exists. Then, in one run:

1. Conveyor: a ``label_studio`` vendor (batches of 100) and a job; the time from the job's POST
   until the job shows all N tasks dispatched (each delivery acknowledged = imported into the
   job's Label Studio project). The project is checked to hold exactly N tasks.
2. Peer: the same N task payloads (read back from that project) imported into a fresh project
   with the same labeling config through Label Studio's own import API, 100 per request, one
   request after another. Printed: both rates and the ratio of the times (target < 1.20).
   As a diagnosis, not a peer, the same import is timed again with as many requests at once
   as labeling-dispatch sends deliveries at once (``--delivery-concurrency``, passed to the
   service as its setting): what Label Studio itself does under concurrent imports.
3. Reconcile: labeling-dispatch is stopped, K annotations are made in Label Studio (its
   webhooks fail), the service is started again and the time from ready until the job shows K
   submitted is taken (reconcile runs on start). Peer: reading every task of the project with
   its annotations, the read reconcile itself must do.

The Label Studio projects it made are deleted at the end. Figures go to
``bench/out/label_studio.json`` (``label_studio_concurrency<n>.json`` when the delivery
concurrency is not the service's default). It resets the shared topics: run it under the
stack session lock,
``flock /tmp/conveyor-stack-session.lock .venv/bin/python bench/label_studio.py``. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import ADMIN_KEY, fresh_services  # noqa: E402
from bench.ingest import pct  # noqa: E402
from bench.labeling_dispatch import feed_events  # noqa: E402
from deploy.services import ServiceProcess  # noqa: E402
from deploy.stack.config import load_settings  # noqa: E402
from services.labeling_dispatch.settings import LabelingSettings  # noqa: E402
from services.labeling_dispatch.use_cases.label_studio import CURSOR_OVERLAP  # noqa: E402
from services.labeling_dispatch.vendor_edges.label_studio_api import (  # noqa: E402
    updated_after_query,
)
from shared import endpoints  # noqa: E402

DATABASE = "conveyor_bench_label_studio"
BATCH = 100  # tasks per Conveyor delivery and per bare import request
POLL_SECONDS = 0.1
WAIT_SECONDS = 300.0
FEED_RATE = 100_000.0  # per second: as fast as the producer takes them
DELIVERY_CONCURRENCY = int(LabelingSettings.model_fields["delivery_concurrency"].default)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


# --------------------------------------------------------------------------- Label Studio


def studio_headers() -> dict[str, str]:
    return {"Authorization": f"Token {load_settings().label_studio_token}"}


def studio_client() -> httpx.Client:
    """Label Studio's REST API with the stack's admin token."""
    return httpx.Client(base_url=endpoints.LABEL_STUDIO_URL, headers=studio_headers(), timeout=120)


def task_total(studio: httpx.Client, project: int) -> int:
    """How many tasks a project holds, as Label Studio counts them."""
    answer = studio.get("/api/tasks", params={"project": project, "page_size": 1})
    answer.raise_for_status()
    return int(answer.json()["total"])


def all_tasks(
    studio: httpx.Client, project: int, fields: str, query: str | None = None
) -> list[dict[str, Any]]:
    """Every task of a project (or those ``query`` selects), 100 a page (past the end: 404)."""
    tasks: list[dict[str, Any]] = []
    page = 1
    while True:
        params: dict[str, str | int] = {
            "project": project,
            "fields": fields,
            "page": page,
            "page_size": BATCH,
        }
        if query is not None:
            params["query"] = query
        answer = studio.get("/api/tasks", params=params)
        if answer.status_code == 404 and page > 1:
            return tasks
        answer.raise_for_status()
        found = answer.json()["tasks"]
        tasks.extend(found)
        if len(found) < BATCH:
            return tasks
        page += 1


def rectangle(label: str) -> dict[str, Any]:
    """One box a labeler drew, as the labeling screen posts it (percent of the image)."""
    return {
        "id": uuid.uuid4().hex[:10],
        "from_name": "bbox",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": 640,
        "original_height": 480,
        "image_rotation": 0,
        "value": {
            "x": 10.0,
            "y": 20.0,
            "width": 30.0,
            "height": 15.0,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }


async def bare_import(
    label_config: str, datas: list[dict[str, Any]], concurrency: int, made: list[int]
) -> dict[str, float]:
    """A fresh project with the config and the tasks imported 100 a request, ``concurrency``
    requests at a time (1: one after another); the project is appended to ``made``."""
    async with httpx.AsyncClient(
        base_url=endpoints.LABEL_STUDIO_URL, headers=studio_headers(), timeout=120
    ) as studio:
        started = time.perf_counter()
        answer = await studio.post(
            "/api/projects",
            json={
                "title": f"conveyor bench: bare import x{concurrency}",
                "label_config": label_config,
            },
        )
        answer.raise_for_status()
        project = int(answer.json()["id"])
        made.append(project)
        created = time.perf_counter()
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def send(batch: list[dict[str, Any]]) -> None:
            async with gate:
                sent = time.perf_counter()
                answer = await studio.post(
                    f"/api/projects/{project}/import",
                    params={"return_task_ids": "true"},
                    json=[{"data": d, "predictions": []} for d in batch],
                )
                answer.raise_for_status()
                if len(answer.json()["task_ids"]) != len(batch):
                    raise RuntimeError(f"bare import: {answer.text[:300]}")
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(send(datas[i : i + BATCH]) for i in range(0, len(datas), BATCH)))
        done = time.perf_counter()
    return {
        "project": project,
        "project_create_ms": ms(created - started),
        "import_s": done - created,
        "batch_p50_ms": ms(pct(latencies, 50)),
        "batch_max_ms": ms(max(latencies)),
    }


# --------------------------------------------------------------------------- Conveyor


async def feed_and_wait(dataset_id: str, count: int) -> float:
    """Play ingest and clean for ``count`` images; the seconds until labeling has them all."""
    started = time.perf_counter()
    await feed_events(dataset_id, count, FEED_RATE)
    conn = await asyncpg.connect(endpoints.postgres_url(DATABASE))
    known = 0
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            known = await conn.fetchval(
                "SELECT count(*) FROM labeling.assets WHERE dataset_id = $1 AND state = 'cleaned'",
                uuid.UUID(dataset_id),
            )
            if known >= count:
                return time.perf_counter() - started
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise RuntimeError(f"labeling-dispatch knew {known} of {count} cleaned images")


def set_up(c: httpx.Client, ingest_url: str, labeling_url: str) -> str:
    """The dataset (slug ``bench``, as ``feed_events`` names it) and a one-class ontology."""
    created = c.post(f"{ingest_url}/v1/datasets", json={"slug": "bench", "name": "Bench"})
    created.raise_for_status()
    ontology = c.post(
        f"{labeling_url}/v1/ontologies",
        json={"name": "bench", "classes": [{"name": "thing", "shape": "bbox"}]},
    )
    ontology.raise_for_status()
    return str(created.json()["id"])


def totals(c: httpx.Client, labeling_url: str, job_id: str) -> dict[str, int]:
    answer = c.get(f"{labeling_url}/v1/jobs/{job_id}")
    answer.raise_for_status()
    found: dict[str, int] = answer.json()["total"]
    return found


def wait_for(c: httpx.Client, labeling_url: str, job_id: str, state: str, count: int) -> float:
    """Poll the job until ``count`` of its tasks are in ``state``; when that was seen."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if (now := totals(c, labeling_url, job_id))[state] >= count:
            return time.perf_counter()
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"job {job_id}: {now[state]} of {count} {state} after {WAIT_SECONDS}s")


def dispatch_through_conveyor(
    c: httpx.Client, labeling_url: str, count: int
) -> tuple[str, str, float]:
    """A Label Studio vendor and a job; the seconds from the job's POST to all dispatched."""
    vendor = c.post(
        f"{labeling_url}/v1/vendors",
        json={
            "name": "bench-label-studio",
            "kind": "label_studio",
            "capacity": min(max(count, 1), 1_000_000),
            "batch_size": BATCH,
        },
    )
    vendor.raise_for_status()
    vendor_id = str(vendor.json()["id"])
    started = time.perf_counter()
    job = c.post(
        f"{labeling_url}/v1/jobs",
        json={
            "name": "bench label studio",
            "dataset": "bench",
            "ontology": "bench",
            "vendor_ids": [vendor_id],
            "lease_seconds": 3600,
        },
    )
    job.raise_for_status()
    job_id = str(job.json()["id"])
    done = wait_for(c, labeling_url, job_id, "dispatched", count)
    return vendor_id, job_id, done - started


def delivery_log(
    c: httpx.Client, labeling_url: str, vendor_id: str, job_created: datetime
) -> dict[str, float]:
    """Where Conveyor's time went, from its delivery log (the service's own clock)."""
    answer = c.get(f"{labeling_url}/v1/deliveries", params={"vendor_id": vendor_id, "limit": 500})
    answer.raise_for_status()
    items = answer.json()["items"]
    latencies = [float(d["last_latency_ms"]) for d in items if d["last_latency_ms"] is not None]
    created = [datetime.fromisoformat(d["created_at"]) for d in items]
    delivered = [datetime.fromisoformat(d["delivered_at"]) for d in items if d["delivered_at"]]
    return {
        "deliveries": len(items),
        "attempts": sum(int(d["attempts"]) for d in items),
        "delivery_p50_ms": round(pct(latencies, 50), 1),
        "delivery_max_ms": round(max(latencies, default=float("nan")), 1),
        "delivery_sum_ms": round(sum(latencies), 1),
        "first_delivery_made_ms": ms((min(created) - job_created).total_seconds()),
        "last_delivered_ms": ms((max(delivered) - job_created).total_seconds()),
    }


# --------------------------------------------------------------------------- the run


def run(
    args: argparse.Namespace, procs: dict[str, ServiceProcess], made: list[int]
) -> dict[str, Any]:
    """The three measurements; every Label Studio project made is appended to ``made``."""
    count, annotations = args.tasks, args.annotations
    labeling_url = procs["labeling"].url
    figures: dict[str, Any] = {"cpu_count": os.cpu_count() or 0, "tasks": count}
    with (
        httpx.Client(headers={"X-API-Key": ADMIN_KEY}, timeout=60) as c,
        studio_client() as studio,
    ):
        dataset_id = set_up(c, procs["ingest"].url, labeling_url)
        print(f"feeding {count} cleaned images on the topics...", flush=True)
        figures["feed_and_known_s"] = round(asyncio.run(feed_and_wait(dataset_id, count)), 2)

        print("Conveyor: job -> Label Studio...", flush=True)
        vendor_id, job_id, conveyor_s = dispatch_through_conveyor(c, labeling_url, count)
        projects = c.get(f"{labeling_url}/v1/jobs/{job_id}/label-studio").json()
        if len(projects) != 1:
            raise RuntimeError(f"expected one Label Studio project, got {projects}")
        project = int(projects[0]["project_id"])
        made.append(project)
        in_studio = task_total(studio, project)
        job = c.get(f"{labeling_url}/v1/jobs/{job_id}").json()
        log = delivery_log(c, labeling_url, vendor_id, datetime.fromisoformat(job["created_at"]))
        figures.update(
            conveyor_s=round(conveyor_s, 3),
            conveyor_tasks_per_s=round(count / conveyor_s, 1),
            conveyor_project_tasks=in_studio,
            **log,
        )

        print("peer: the same tasks through Label Studio's import API...", flush=True)
        tasks = one_per_conveyor_task(all_tasks(studio, project, "task_only"))
        if len(tasks) != count:
            raise RuntimeError(f"project {project} holds {len(tasks)} of the {count} tasks")
        config = studio.get(f"/api/projects/{project}").json()["label_config"]
        datas = [t["data"] for t in tasks]
        bare = asyncio.run(bare_import(config, datas, 1, made))
        # Not a peer, a diagnosis: the same import with as many requests at once as Conveyor
        # sends deliveries at once (does Label Studio itself slow down under them?).
        parallel = asyncio.run(bare_import(config, datas, args.delivery_concurrency, made))
        for run_of in (bare, parallel):
            if (held := task_total(studio, int(run_of["project"]))) != count:
                raise RuntimeError(f"bare project holds {held} tasks, not {count}")
        figures.update(
            bare_s=round(bare["import_s"], 3),
            bare_tasks_per_s=round(count / bare["import_s"], 1),
            bare_project_create_ms=bare["project_create_ms"],
            bare_batch_p50_ms=bare["batch_p50_ms"],
            bare_batch_max_ms=bare["batch_max_ms"],
            import_ratio=round(conveyor_s / bare["import_s"], 2),
            delivery_concurrency=args.delivery_concurrency,
            bare_concurrent_s=round(parallel["import_s"], 3),
            bare_concurrent_batch_p50_ms=parallel["batch_p50_ms"],
            bare_concurrent_batch_max_ms=parallel["batch_max_ms"],
        )

        print(f"reconcile: {annotations} annotations made while labeling-dispatch is down...")
        procs["labeling"].stop()
        started = time.perf_counter()
        for task in tasks[:annotations]:
            answer = studio.post(
                f"/api/tasks/{task['id']}/annotations/",
                json={"result": [rectangle("thing")], "lead_time": 2.0},
            )
            answer.raise_for_status()
        figures["annotate_s"] = round(time.perf_counter() - started, 2)
        launched = time.perf_counter()
        procs["labeling"].start()
        ready = time.perf_counter()
        done = wait_for(c, labeling_url, job_id, "submitted", annotations)
        stored = totals(c, labeling_url, job_id)["submitted"]
        if stored != annotations:
            raise RuntimeError(f"{stored} submitted, {annotations} annotations made")
        started = time.perf_counter()
        read = all_tasks(studio, project, "all")
        read_s = time.perf_counter() - started
        if sum(len(t.get("annotations") or []) for t in read) != annotations:
            raise RuntimeError("the full read did not return every annotation")
        # A diagnosis: the read as reconcile asks for it (updated since the project was made,
        # oldest first), without Conveyor's work on each task.
        started = time.perf_counter()
        since = updated_after_query(datetime.fromisoformat(job["created_at"]) - CURSOR_OVERLAP)
        filtered = all_tasks(studio, project, "all", since)
        filtered_s = time.perf_counter() - started
        figures.update(
            annotations=annotations,
            restart_to_ready_s=round(ready - launched, 2),
            reconcile_s=round(done - ready, 3),
            reconcile_from_launch_s=round(done - launched, 3),
            reconcile_per_s=round(annotations / (done - ready), 1),
            bare_read_s=round(read_s, 3),
            bare_read_tasks=len(read),
            reconcile_ratio=round((done - ready) / read_s, 2),
            bare_filtered_read_s=round(filtered_s, 3),
            bare_filtered_read_tasks=len(filtered),
        )
        # Checked last: a delivery try that timed out may still land in Label Studio later.
        final = task_total(studio, project)
        figures.update(conveyor_project_tasks_final=final, duplicate_tasks=final - count)
    return figures


def one_per_conveyor_task(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first Label Studio task of each Conveyor task (a retried delivery may import twice)."""
    first: dict[str, dict[str, Any]] = {}
    for task in tasks:
        first.setdefault(str(task["data"]["conveyor_task_id"]), task)
    return list(first.values())


def delete_projects(made: list[int]) -> None:
    with studio_client() as studio:
        for project in made:
            answer = studio.delete(f"/api/projects/{project}/")
            if answer.status_code not in (204, 404):
                print(f"  project {project} not deleted: {answer.status_code}", flush=True)


def report(f: dict[str, Any]) -> None:
    print()
    print(f"Conveyor -> Label Studio ({f['cpu_count']} cores, ingest + labeling running)")
    print(f"  {f['tasks']} tasks, {BATCH} per delivery / per import request")
    print(
        f"  Conveyor: job POST -> all dispatched   {f['conveyor_s']:.2f} s"
        f"  {f['conveyor_tasks_per_s']:.0f} tasks/s  ({f['conveyor_project_tasks']} in the project)"
    )
    print(
        f"  peer: bare import, sequential        {f['bare_s']:.2f} s"
        f"  {f['bare_tasks_per_s']:.0f} tasks/s"
    )
    print(f"  ratio Conveyor / bare time           {f['import_ratio']:.2f}   (target < 1.20)")
    if f["duplicate_tasks"]:
        print(
            f"  DUPLICATES: the Conveyor project ended with {f['conveyor_project_tasks_final']}"
            f" tasks for {f['tasks']} Conveyor tasks ({f['conveyor_project_tasks']} when the job"
            " showed all dispatched)"
        )
    print(
        f"  deliveries {f['deliveries']} ({f['attempts']} tries): latency p50 / max"
        f" {f['delivery_p50_ms']} / {f['delivery_max_ms']} ms, sum {f['delivery_sum_ms']} ms;"
        f" first made {f['first_delivery_made_ms']} ms, last done {f['last_delivered_ms']} ms"
        " after the job"
    )
    print(
        f"  bare import request p50 / max {f['bare_batch_p50_ms']} / {f['bare_batch_max_ms']} ms;"
        f" project create {f['bare_project_create_ms']} ms"
    )
    print(
        f"  diagnosis: bare import {f['delivery_concurrency']} requests at once"
        f" {f['bare_concurrent_s']:.2f} s, request p50 / max {f['bare_concurrent_batch_p50_ms']}"
        f" / {f['bare_concurrent_batch_max_ms']} ms"
    )
    print(
        f"  reconcile: {f['annotations']} annotations made while down ({f['annotate_s']} s);"
        f" restart -> ready {f['restart_to_ready_s']} s"
    )
    print(
        f"  ready -> all submitted                 {f['reconcile_s']:.2f} s"
        f"  {f['reconcile_per_s']:.0f} annotations/s"
        f"  (from launch {f['reconcile_from_launch_s']} s)"
    )
    print(
        f"  peer: read all {f['bare_read_tasks']} tasks with annotations {f['bare_read_s']:.2f} s"
        f"  (ratio {f['reconcile_ratio']:.2f})"
    )
    print(
        f"  diagnosis: the same read filtered on updated_at, as reconcile asks"
        f" {f['bare_filtered_read_s']:.2f} s ({f['bare_filtered_read_tasks']} tasks)"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Resets the shared Kafka topics: run under "
        "'flock /tmp/conveyor-stack-session.lock'. Figures: bench/out/label_studio.json.",
    )
    parser.add_argument(
        "--tasks", type=int, default=1000, help="cleaned images, so tasks imported (default 1000)"
    )
    parser.add_argument(
        "--annotations",
        type=int,
        default=100,
        help="annotations made in Label Studio while the service is down (default 100)",
    )
    parser.add_argument(
        "--delivery-concurrency",
        type=int,
        default=DELIVERY_CONCURRENCY,
        help="deliveries labeling-dispatch sends at once (its setting; default"
        f" {DELIVERY_CONCURRENCY}); also the concurrency of the diagnostic bare import",
    )
    args = parser.parse_args()
    if not 1 <= args.annotations <= args.tasks:
        parser.error("--annotations must be between 1 and --tasks")

    names = ("ingest", "labeling")
    procs = fresh_services(
        names,
        DATABASE,
        "label-studio",
        {
            "CONVEYOR_LABELING_LABEL_STUDIO_TOKEN": load_settings().label_studio_token,
            # reconcile runs once at start; no periodic round competes with the imports
            "CONVEYOR_LABELING_LABEL_STUDIO_SYNC_INTERVAL_SECONDS": "3600",
            "CONVEYOR_LABELING_DELIVERY_CONCURRENCY": str(args.delivery_concurrency),
        },
    )
    made: list[int] = []
    try:
        for proc in procs.values():
            proc.start()
        figures = run(args, procs, made)
    finally:
        for proc in procs.values():
            proc.stop()
        delete_projects(made)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    name = "label_studio"
    if args.delivery_concurrency != DELIVERY_CONCURRENCY:
        name += f"_concurrency{args.delivery_concurrency}"
    (out / f"{name}.json").write_text(json.dumps(figures, indent=2))
    report(figures)


if __name__ == "__main__":
    main()
