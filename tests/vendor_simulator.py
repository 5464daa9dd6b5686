"""A labeling vendor for tests: an HTTP server on 127.0.0.1 that takes Conveyor's deliveries.

It records every delivery it is sent (headers, body, whether the signature verified with its
secret, what it answered) and behaves as told: fail the first N deliveries (503 by default),
answer slowly, answer a fixed status (410: "gone"), send a ``Retry-After``. It also posts
signed annotations back to Conveyor's vendor webhook, as a real vendor would.

    with VendorSimulator() as vendor:
        ...create the vendor with url=vendor.url, then vendor.secret = <its secret>...
        vendor.fail_first = 2
        first = vendor.wait_for_deliveries(1)
        vendor.post_annotations(labeling_url, vendor_id, [...])
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from services.labeling_dispatch.domain.signatures import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    SignatureCheck,
    sign,
    verify,
)


@dataclass(frozen=True)
class ReceivedDelivery:
    """One POST the simulator was sent, and what it answered."""

    received_at: float
    delivery_id: str | None
    headers: dict[str, str]
    body: bytes
    signature: SignatureCheck
    answered: int

    @property
    def payload(self) -> dict[str, Any]:
        """The body as JSON."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def task_ids(self) -> list[str]:
        """The ids of the tasks the delivery carried."""
        return [str(t["task_id"]) for t in self.payload["tasks"]]


@dataclass
class VendorSimulator:
    """A vendor's webhook endpoint, in a thread; its behaviour can change while it runs."""

    secret: str = ""
    fail_first: int = 0
    fail_status: int = 503
    status: int = 200
    delay_seconds: float = 0.0
    retry_after: str | None = None
    tolerance_seconds: int = 300
    # Called with each accepted delivery (in the server's thread) after it is recorded.
    on_delivery: Callable[[ReceivedDelivery], None] | None = None
    received: list[ReceivedDelivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ----------------------------------------------------------------------

    def start(self) -> VendorSimulator:
        """Listen on a free port of 127.0.0.1."""
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, extra = simulator._answer(dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                reply = json.dumps({"status": status}).encode()
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> VendorSimulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Where Conveyor should POST deliveries."""
        assert self._server is not None, "start() the simulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/deliveries"

    # receiving ----------------------------------------------------------------------

    def _answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        """Decide, record and return the answer to one delivery."""
        with self._lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                status = self.fail_status
            else:
                status = self.status
            delay, retry_after, secret = self.delay_seconds, self.retry_after, self.secret
        check = verify(
            secret,
            headers.get(SIGNATURE_HEADER),
            body,
            now=time.time(),
            tolerance=self.tolerance_seconds,
        )
        delivery = ReceivedDelivery(
            time.time(), headers.get(DELIVERY_HEADER), headers, body, check, status
        )
        with self._lock:
            self.received.append(delivery)
        if delay:
            time.sleep(delay)
        if self.on_delivery is not None and 200 <= status < 300:
            self.on_delivery(delivery)
        extra = {"Retry-After": retry_after} if retry_after and status in (429, 503) else {}
        return status, extra

    def deliveries(self) -> list[ReceivedDelivery]:
        """Every delivery received so far (a copy)."""
        with self._lock:
            return list(self.received)

    def acknowledged(self) -> list[ReceivedDelivery]:
        """The deliveries answered with a 2xx."""
        return [d for d in self.deliveries() if 200 <= d.answered < 300]

    def held_task_ids(self) -> list[str]:
        """Task ids of every acknowledged delivery, in order (repeats kept)."""
        return [t for d in self.acknowledged() for t in d.task_ids]

    def wait_for_deliveries(
        self, count: int, timeout: float = 30.0, *, acknowledged: bool = False
    ) -> list[ReceivedDelivery]:
        """Block until at least ``count`` deliveries (acknowledged ones, if asked) arrived."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.acknowledged() if acknowledged else self.deliveries()
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(got)} of {count} deliveries within {timeout}s")
            time.sleep(0.05)

    # answering ----------------------------------------------------------------------

    def post_annotations(
        self,
        labeling_url: str,
        vendor_id: uuid.UUID | str,
        annotations: Sequence[dict[str, Any]],
        *,
        delivery_id: str | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
        timeout: float = 30.0,
    ) -> httpx.Response:
        """POST ``{"annotations": [...]}`` to the vendor webhook, signed (by default with this
        vendor's secret, now) under a new delivery id unless one is given (to replay)."""
        body = json.dumps({"annotations": list(annotations)}).encode()
        stamp = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.secret if secret is None else secret, body, stamp),
            DELIVERY_HEADER: delivery_id or str(uuid.uuid4()),
        }
        return httpx.post(
            f"{labeling_url}/v1/vendors/{vendor_id}/webhook",
            content=body,
            headers=headers,
            timeout=timeout,
        )


def bbox_answer(task_id: str, annotator: str = "annotator-1", cls: str = "car") -> dict[str, Any]:
    """A one-box annotation of a task, in Conveyor's canonical form."""
    box = {"x": 1, "y": 1, "width": 10, "height": 10}
    return {
        "task_id": task_id,
        "annotator_id": annotator,
        "shapes": [{"class": cls, "type": "bbox", "bbox": box, "attributes": {}}],
    }
