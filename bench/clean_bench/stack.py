"""Where the benchmark finds the repository and the local stack it runs its services against."""

from __future__ import annotations

from pathlib import Path

from shared.endpoints import postgres_url

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "cvk_bench_admin"
DATABASE = "conveyor_bench_clean"
PG = postgres_url(DATABASE)
