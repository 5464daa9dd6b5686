"""Random (version 4) UUIDs without a system call each.

``uuid.uuid4()`` asks the kernel for 16 random bytes every time, and CPython lets go of the
GIL around that call. On a service's event loop, with worker threads running Python (the
store's puts), taking the GIL back can wait up to the switch interval (5 ms), and every
request in flight waits with it: a profile of ingest under load found its loop parked in
``uuid4`` for 7 % of its time. Here the bytes come from the same source (``os.urandom``), 256
identifiers per call.
"""

from __future__ import annotations

import os
import threading
import uuid

_BATCH = 256
_SIZE = 16


class _RandomBytes:
    """A buffer of OS randomness handed out 16 bytes at a time (thread-safe; emptied in a
    forked child, so two processes never hand out the same bytes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0

    def take(self) -> bytes:
        with self._lock:
            if self._offset >= len(self._buffer):
                self._buffer, self._offset = os.urandom(_BATCH * _SIZE), 0
            start = self._offset
            self._offset += _SIZE
            return self._buffer[start : start + _SIZE]

    def forget(self) -> None:
        self._lock = threading.Lock()
        self._buffer, self._offset = b"", 0


_pool = _RandomBytes()
os.register_at_fork(after_in_child=_pool.forget)


def random_uuid() -> uuid.UUID:
    """A version 4 UUID, as random as ``uuid.uuid4()``."""
    return uuid.UUID(bytes=_pool.take(), version=4)
