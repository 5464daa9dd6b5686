"""A job's agreement on image classes, from the answers QC judged, against the reference
libraries on the same ratings."""

from __future__ import annotations

import uuid
from typing import Any

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from services.qc.context import Qc
from services.qc.use_cases.agreement import job_agreement_report
from shared.auth import Principal, Role
from shared.errors import ApiError
from tests.integration.test_qc_judging import Job

ADMIN = Principal("admin-key", "admin", Role.admin)
CLASSES = ["day", "night", "dusk"]


def classified(name: str) -> list[dict[str, Any]]:
    return [{"class": name, "type": "classification", "attributes": {}}]


async def test_alpha_and_kappas_match_the_reference_libraries(qc: Qc) -> None:
    job = await Job(qc, overlap=3).start()
    # 8 images, 3 annotators each; they mostly agree, with some confusion between night/dusk
    given = [
        ("day", "day", "day"),
        ("night", "night", "dusk"),
        ("dusk", "dusk", "dusk"),
        ("day", "day", "night"),
        ("night", "night", "night"),
        ("dusk", "night", "dusk"),
        ("day", "day", "day"),
        ("night", "dusk", "night"),
    ]
    for labels in given:
        asset = await job.asset()
        await job.submit(
            *[
                job.answer(asset, replica, classified(label), annotator=f"rater-{replica}")
                for replica, label in enumerate(labels)
            ]
        )

    report = await job_agreement_report(qc, ADMIN, job.job_id)

    codes = {name: index for index, name in enumerate(CLASSES)}
    matrix = np.array([[codes[g[r]] for g in given] for r in range(3)], dtype=float)
    expected_alpha = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    table, _ = aggregate_raters(matrix.T.astype(int))
    assert report.classified_images == 8 and report.alpha_items == 8
    assert report.krippendorff_alpha == pytest.approx(expected_alpha, abs=1e-9)
    assert report.fleiss_kappa == pytest.approx(fleiss_kappa(table), abs=1e-9)
    assert report.fleiss_items == 8 and report.fleiss_raters == 3
    pairs = {(p.first, p.second): p for p in report.cohen_kappa}
    first_second = pairs[("rater-0", "rater-1")]
    assert first_second.items == 8
    assert first_second.kappa == pytest.approx(
        cohen_kappa_score([g[0] for g in given], [g[1] for g in given]), abs=1e-9
    )


async def test_a_job_without_image_classes_has_no_figures_and_an_unknown_job_is_404(
    qc: Qc,
) -> None:
    job = await Job(qc, overlap=2).start()
    asset = await job.asset()
    box = {"class": "car", "type": "bbox", "bbox": {"x": 1, "y": 1, "width": 5, "height": 5}}
    await job.submit(job.answer(asset, 0, [box]), job.answer(asset, 1, [box]))
    report = await job_agreement_report(qc, ADMIN, job.job_id)
    assert report.classified_images == 0 and report.krippendorff_alpha is None
    with pytest.raises(ApiError) as unknown:
        await job_agreement_report(qc, ADMIN, uuid.uuid4())
    assert unknown.value.status == 404
