"""QC benchmark: annotations judged per second (consensus of 3 annotators, 10 boxes each).

Runs its own qc process against the local stack (fresh database ``conveyor_bench_qc_judging``, fresh
topics and consumer group). The benchmark plays labeling-dispatch on the topics: an ontology
version, a job with overlap 3, and for each of N generated images its 3 tasks and 3
``conveyor.annotation.submitted.v1`` answers of 10 boxes each (three annotators drawing the
same objects with a pixel or two of disagreement, some images with a box one annotator
missed). The events are all published first; then qc is started and drains them, and the
benchmark reads ``conveyor.qc.consensus_computed.v1`` back from Kafka until every image has
one. Prints answers judged per second from qc's start-up being ready to the last consensus.

Peer, in the same run: the same consensus computed in-process by QC's own domain code
(``compute_consensus`` on the same answers), the floor of what judging can cost.

It resets the shared topics: run it under the stack session lock,
``flock /tmp/conveyor-stack-session.lock .venv/bin/python bench/qc.py``. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import fresh_services  # noqa: E402
from services.qc.domain.consensus import ConsensusPolicy, compute_consensus  # noqa: E402
from shared import endpoints  # noqa: E402
from shared.events import (  # noqa: E402
    CONSENSUS_COMPUTED,
    QC_EVENTS,
    AnnotationSubmittedV1,
    Envelope,
    JobCreatedV1,
    OntologyVersionCreatedV1,
    Payload,
    TaskCreatedV1,
    event_type_of,
)
from shared.kafka import encode  # noqa: E402

DATABASE = "conveyor_bench_qc_judging"
CLASSES = ["car", "person", "bike"]
OVERLAP = 3
WIDTH, HEIGHT = 1280, 720


def objects(rng: random.Random, count: int) -> list[tuple[str, float, float, float, float]]:
    """``count`` objects of an image: class and box."""
    found = []
    for _ in range(count):
        w, h = rng.uniform(40, 200), rng.uniform(40, 200)
        x, y = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
        found.append((rng.choice(CLASSES), x, y, w, h))
    return found


def drawn(
    rng: random.Random, truth: list[tuple[str, float, float, float, float]], miss: bool
) -> list[dict[str, Any]]:
    """One annotator's boxes of the objects: a pixel or two off, sometimes one missed."""
    shapes = []
    for index, (cls, x, y, w, h) in enumerate(truth):
        if miss and index == 0:
            continue
        dx, dy = rng.uniform(-2, 2), rng.uniform(-2, 2)
        box = {
            "x": round(max(0.0, x + dx), 2),
            "y": round(max(0.0, y + dy), 2),
            "width": round(w + rng.uniform(-2, 2), 2),
            "height": round(h + rng.uniform(-2, 2), 2),
        }
        shapes.append({"class": cls, "type": "bbox", "bbox": box, "attributes": {}})
    return shapes


def workload(
    images: int, boxes: int, seed: int
) -> tuple[list[Payload], list[list[list[dict[str, Any]]]]]:
    """The events to publish, and per image the 3 annotators' shapes (for the in-process peer)."""
    rng = random.Random(seed)
    ontology, dataset, job, vendor = (uuid.uuid4() for _ in range(4))
    events: list[Payload] = [
        OntologyVersionCreatedV1(
            ontology_id=ontology, name="bench", version=1, classes=CLASSES, created_by="bench"
        ),
        JobCreatedV1(
            job_id=job,
            name="bench",
            dataset_id=dataset,
            ontology_id=ontology,
            ontology_version=1,
            vendor_ids=[vendor],
            overlap=OVERLAP,
            gold_ratio=0.0,
            priority="arrival",
            lease_seconds=3600,
            created_by="bench",
        ),
    ]
    answers: list[list[list[dict[str, Any]]]] = []
    now = datetime.now(UTC)
    for _ in range(images):
        asset = uuid.uuid4()
        truth = objects(rng, boxes)
        per_image = []
        for replica in range(OVERLAP):
            task = uuid.uuid4()
            shapes = drawn(rng, truth, miss=replica == 2 and rng.random() < 0.2)
            per_image.append(shapes)
            events.append(
                TaskCreatedV1(
                    task_id=task,
                    job_id=job,
                    asset_id=asset,
                    dataset_id=dataset,
                    replica=replica,
                    gold=False,
                )
            )
            events.append(
                AnnotationSubmittedV1(
                    annotation_id=uuid.uuid4(),
                    task_id=task,
                    job_id=job,
                    asset_id=asset,
                    dataset_id=dataset,
                    vendor_id=vendor,
                    annotator_id=f"annotator-{replica}",
                    replica=replica,
                    gold=False,
                    ontology_id=ontology,
                    ontology_version=1,
                    shapes=shapes,
                    vendor_submitted_at=now,
                    received_at=now,
                    lead_time_seconds=30.0,
                )
            )
        answers.append(per_image)
    return events, answers


async def publish(events: list[Payload]) -> None:
    """Every event on its topic, keyed as labeling-dispatch keys them (task id, else job)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=endpoints.KAFKA_BOOTSTRAP_SERVERS, linger_ms=20, acks="all"
    )
    await producer.start()
    try:
        for payload in events:
            event_type = event_type_of(payload)
            data = payload.model_dump(mode="json")
            key = str(data.get("task_id") or data.get("job_id") or data.get("ontology_id"))
            envelope = Envelope(
                id=str(uuid.uuid4()),
                source="/bench/qc",
                type=event_type.name,
                time=datetime.now(UTC),
                subject=str(data.get("asset_id") or key),
                data=data,
            )
            value, headers = encode(envelope)
            await producer.send(
                event_type.topic.name, value=value, key=key.encode(), headers=headers
            )
        await producer.flush()
    finally:
        await producer.stop()


async def wait_for_consensus(images: int, timeout: float) -> tuple[int, float]:
    """Read qc's topic from the start until ``images`` consensus events; (count, when last)."""
    consumer = AIOKafkaConsumer(
        QC_EVENTS.name,
        bootstrap_servers=endpoints.KAFKA_BOOTSTRAP_SERVERS,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen: set[str] = set()
    last = time.perf_counter()
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < images and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if dict(record.headers).get("ce_type", b"").decode() == CONSENSUS_COMPUTED.name:
                        seen.add(json.loads(record.value or b"{}")["asset_id"])
                        last = time.perf_counter()
    finally:
        await consumer.stop()
    return len(seen), last


def in_process(answers: list[list[list[dict[str, Any]]]]) -> float:
    """Seconds to compute every image's consensus with QC's domain code."""
    policy = ConsensusPolicy(iou_threshold=0.5, min_agreement=0.7)
    started = time.perf_counter()
    for per_image in answers:
        compute_consensus({f"annotator-{i}": s for i, s in enumerate(per_image)}, policy)
    return time.perf_counter() - started


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images, each answered 3 times")
    parser.add_argument("--boxes", type=int, default=10, help="boxes per answer")
    args = parser.parse_args()

    qc = fresh_services(["qc"], DATABASE, "qc")["qc"]
    events, answers = workload(args.images, args.boxes, seed=7)
    # qc creates the topics at start; start it once so the events have somewhere to go
    qc.start()
    qc.stop()
    print(
        f"publishing {len(events)} events ({args.images} images x {OVERLAP} answers)...", flush=True
    )
    asyncio.run(publish(events))
    print("starting qc and timing the drain...", flush=True)
    started = time.perf_counter()
    qc.start()
    ready = time.perf_counter()
    try:
        count, last = asyncio.run(wait_for_consensus(args.images, timeout=600))
    finally:
        qc.stop()
    drain = last - ready
    answered = count * OVERLAP
    peer = in_process(answers)
    figures = {
        "cpu_count": os.cpu_count() or 0,
        "images": args.images,
        "boxes_per_answer": args.boxes,
        "answers": args.images * OVERLAP,
        "consensus_events": count,
        "start_to_ready_s": round(ready - started, 2),
        "drain_s": round(drain, 2),
        "answers_per_s": round(answered / drain, 1) if drain > 0 else None,
        "in_process_s": round(peer, 3),
        "in_process_answers_per_s": round(args.images * OVERLAP / peer, 1),
    }
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "qc.json").write_text(json.dumps(figures, indent=2))
    f = figures
    print()
    print(f"Conveyor QC ({f['cpu_count']} cores, qc alone on the stack)")
    print(
        f"  {f['images']} images x {OVERLAP} answers of {f['boxes_per_answer']} boxes;"
        f" {f['consensus_events']} consensus events"
    )
    print(
        f"  answers judged/s (ready -> last consensus)   {f['answers_per_s']}"
        f"   ({f['drain_s']} s; target >= 300/s)"
    )
    print(
        f"  peer: consensus in-process                    {f['in_process_answers_per_s']}/s"
        f"   ({f['in_process_s']} s)"
    )
    if f["answers_per_s"]:
        ratio = f["in_process_answers_per_s"] / f["answers_per_s"]
        print(f"  ratio in-process / service                    {ratio:.1f}")
    if count < args.images:
        print(f"  INCOMPLETE: {args.images - count} images got no consensus event in time")
        sys.exit(1)


if __name__ == "__main__":
    main()
