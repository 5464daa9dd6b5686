"""Concurrent decodes share a memory budget: big rasters wait their turn, small ones do not."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from services.clean.checks.budget import DecodeBudget, decode_cost
from services.clean.checks.container import read_header
from services.clean.checks.report import analyze_image


def png(width: int, height: int) -> bytes:
    rng = np.random.default_rng(7)
    ok, data = cv2.imencode(".png", rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


def test_the_cost_of_a_raster_follows_its_declared_size_and_channels() -> None:
    colour, gray = (
        read_header(png(200, 100)),
        read_header(cv2.imencode(".png", np.zeros((100, 200), np.uint8))[1].tobytes()),
    )
    assert decode_cost(colour) == 200 * 100 * 3 * 2
    assert decode_cost(gray) == 200 * 100 * 1 * 2


def test_reservations_never_hold_more_than_the_budget_at_once() -> None:
    budget = DecodeBudget(100)

    def hold(cost: int) -> None:
        with budget.reserve(cost):
            assert budget.held <= 100
            time.sleep(0.01)

    threads = [threading.Thread(target=hold, args=(cost,)) for cost in [60, 60, 30, 10, 90, 40] * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.peak <= 100
    assert budget.held == 0


def test_an_image_larger_than_the_whole_budget_runs_alone() -> None:
    budget = DecodeBudget(100)
    seen: list[int] = []

    def hold(cost: int) -> None:
        with budget.reserve(cost):
            seen.append(budget.held)
            time.sleep(0.02)

    threads = [threading.Thread(target=hold, args=(cost,)) for cost in (500, 20, 500)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == [20, 500, 500]  # never 520: the big ones ran with nothing beside them


def test_a_failing_check_gives_its_reservation_back() -> None:
    budget = DecodeBudget(100)
    with pytest.raises(RuntimeError), budget.reserve(80):
        raise RuntimeError("decode crashed")
    assert budget.held == 0


def test_the_report_is_the_same_with_or_without_a_budget() -> None:
    data = png(320, 240)
    budget = DecodeBudget(10 * 1024 * 1024)
    assert analyze_image(data, budget=budget) == analyze_image(data)
    assert budget.peak == 320 * 240 * 3 * 2
    assert budget.held == 0


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DecodeBudget(0)
