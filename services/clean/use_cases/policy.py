"""A dataset's cleaning policy: read it, or replace it and re-judge the dataset's assets.

Re-judging works from the stored findings (nothing is downloaded again); only the assets
whose verdict changes get a new asset.cleaned / asset.rejected event.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.clean import domain
from services.clean import repository as repo
from services.clean.context import Clean
from services.clean.models import Policy, QualityReport
from services.clean.policy import PolicyRules, Verdict
from services.clean.schemas import PolicyOut, Reevaluation
from services.clean.use_cases.datasets import dataset_of
from shared.auth import Principal
from shared.uow import UnitOfWork

PAGE = 500  # stored reports re-judged per query


async def stored_rules(session: AsyncSession, dataset: uuid.UUID) -> tuple[PolicyRules, int]:
    """A dataset's policy and its version (the defaults, version 0, if never set)."""
    stored = await repo.policy(session, dataset)
    if stored is None:
        return PolicyRules(), 0
    return PolicyRules.model_validate(stored.rules), stored.version


async def get_policy(clean: Clean, principal: Principal, slug: str) -> PolicyOut:
    """A dataset's policy with every default spelled out."""
    async with clean.units.read() as session:
        ident = await dataset_of(session, slug, principal)
        rules, version = await stored_rules(session, ident)
    return PolicyOut.from_rules(slug, version, rules)


async def set_policy(
    clean: Clean, principal: Principal, slug: str, rules: PolicyRules
) -> Reevaluation:
    """Replace a dataset's policy and re-judge its assets from their stored findings."""
    by = principal.name
    async with clean.units.begin() as uow:
        session = uow.session
        ident = await dataset_of(session, slug, principal)
        await repo.lock_dataset(session, ident)
        stored = await repo.policy(session, ident)
        version = (stored.version if stored else 0) + 1
        if stored is None:
            session.add(
                Policy(dataset_id=ident, version=version, rules=rules.model_dump(), updated_by=by)
            )
        else:
            stored.version, stored.rules, stored.updated_by = version, rules.model_dump(), by
            stored.updated_at = datetime.now(UTC)
        checked = changed = 0
        after = 0
        while True:
            reports = await repo.reports_of(session, ident, after, PAGE)
            for report in reports:
                checked += 1
                verdict = domain.changed_verdict(report, rules)
                if verdict is not None:
                    changed += 1
                    apply_verdict(uow, report, verdict, slug, version)
                else:
                    report.policy_version = version
            if len(reports) < PAGE:
                break
            after = reports[-1].arrival
    return Reevaluation(policy_version=version, assets_checked=checked, assets_changed=changed)


def apply_verdict(
    uow: UnitOfWork, report: QualityReport, verdict: Verdict, dataset_slug: str, version: int
) -> None:
    """Store a new verdict on a stored report and stage the event that announces it (a policy
    change and a re-analysis announce changed verdicts the same way)."""
    report.status = domain.status(verdict)
    report.reasons = domain.stored_checks(verdict.reasons)
    report.flags = domain.stored_checks(verdict.flags)
    report.policy_version = version
    report.updated_at = datetime.now(UTC)
    announced = domain.verdict_event(
        report.asset_id,
        report.dataset_id,
        dataset_slug,
        report.media_type,
        report.metrics,
        verdict,
        version,
    )
    uow.emit(announced, subject=str(report.asset_id), actor="clean")
