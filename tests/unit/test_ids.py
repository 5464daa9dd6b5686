"""shared.ids: version 4 UUIDs drawn from a buffer of OS randomness."""

from __future__ import annotations

import os
import threading
import uuid

from shared.ids import random_uuid


def test_random_uuids_are_version_4_and_distinct_across_many_refills() -> None:
    ids = [random_uuid() for _ in range(5_000)]  # about 20 refills of the buffer
    assert len(set(ids)) == len(ids)
    assert {u.version for u in ids} == {4}
    assert {u.variant for u in ids} == {uuid.RFC_4122}


def test_threads_drawing_at_once_never_get_the_same_uuid() -> None:
    drawn: list[list[uuid.UUID]] = [[] for _ in range(8)]

    def draw(into: list[uuid.UUID]) -> None:
        into.extend(random_uuid() for _ in range(2_000))

    threads = [threading.Thread(target=draw, args=(bucket,)) for bucket in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [u for bucket in drawn for u in bucket]
    assert len(set(every)) == len(every) == 16_000


def test_a_forked_child_does_not_hand_out_the_parents_next_uuids() -> None:
    random_uuid()  # the parent's buffer now holds bytes not yet handed out
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.close(read_end)
        os.write(write_end, b"".join(random_uuid().bytes for _ in range(4)))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = b"".join(random_uuid().bytes for _ in range(4))
    assert len(child) == 64
    assert child != parent
