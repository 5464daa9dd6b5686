"""Typed HTTP clients for the Conveyor ingest, clean, audit, labeling-dispatch and qc services.

Every non-2xx answer becomes an :class:`ApiError` carrying the contract's error envelope
(``{"error": {"code", "message", "details"}}``), and every transport failure becomes a
:class:`ServiceUnreachable`, so callers never have to look at raw ``httpx`` exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal, TypeVar, cast
from urllib.parse import quote

import httpx

from conveyor_cli import __version__
from conveyor_cli.schemas import (
    ApiKey,
    Asset,
    AssetDetail,
    AuditRecord,
    CreatedApiKey,
    Dataset,
    DatasetExport,
    DatasetVersion,
    Delivery,
    DeliveryDetail,
    DeliveryStatus,
    DuplicateGroups,
    Job,
    JobAction,
    JobDetail,
    JobPriority,
    JobState,
    LabelStudioProject,
    Ontology,
    OntologyClass,
    OntologyDetail,
    OntologyVersion,
    Page,
    Policy,
    PolicyRules,
    QualityReport,
    QualitySummary,
    Reanalysis,
    Reevaluation,
    Review,
    ReviewDetail,
    ReviewState,
    ScorecardList,
    SourcesIn,
    SourcesStored,
    Task,
    TaskState,
    Timeline,
    Vendor,
    VendorScorecard,
    VendorWithCredentials,
    VerifyResult,
)
from shared import endpoints

T = TypeVar("T")

DEFAULT_INGEST_URL = endpoints.INGEST_URL
DEFAULT_CLEAN_URL = endpoints.CLEAN_URL
DEFAULT_AUDIT_URL = endpoints.AUDIT_URL
DEFAULT_LABELING_URL = endpoints.LABELING_URL
DEFAULT_QC_URL = endpoints.QC_URL
API_KEY_HEADER = "X-API-Key"
USER_AGENT = f"conveyor-cli/{__version__}"

# Most calls are small JSON round-trips; uploads and exports get their own, longer timeouts.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Large videos can take a while to send and for the service to store, so reads/writes get
# generous limits; the pool never waits because connections == workers.
UPLOAD_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=600.0, pool=None)
# An export can legitimately pause between lines while the server walks the log.
EXPORT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=30.0, pool=30.0)
# A policy change re-judges every asset of the dataset before it answers.
POLICY_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=30.0, pool=30.0)
# Page size used while following cursors; the server may cap it lower, which is fine.
PAGE_SIZE = 100


# --------------------------------------------------------------------------- errors


class ConveyorError(Exception):
    """Base class of every expected failure the CLI reports as one line."""

    def one_line(self) -> str:
        """Return the message printed after ``error:``."""
        return str(self)

    def explanation(self) -> list[str]:
        """Further lines printed under the error line (none by default)."""
        return []


class ApiError(ConveyorError):
    """The service answered with a 4xx/5xx status."""

    def __init__(
        self,
        *,
        service: str,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.service = service
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        # What to do about it, set by the command that knows the context.
        self.hint: str | None = None

    def explanation(self) -> list[str]:
        """One line per invalid field of a 422 answer, then the hint if any."""
        lines = validation_problems(self.details)
        if self.hint:
            lines.append(self.hint)
        return lines

    @property
    def transient(self) -> bool:
        """Gateway/unavailable answers are worth retrying; everything else is final."""
        return self.status in (502, 503, 504)


class ServiceUnreachable(ConveyorError):
    """The request never got an HTTP answer (refused, DNS, timeout, dropped connection)."""

    def __init__(self, *, service: str, url: str, reason: str, connect: bool) -> None:
        self.service = service
        self.url = url
        self.reason = reason
        self.connect = connect
        if connect:
            text = f"cannot reach {service} at {url} ({reason})"
        else:
            text = f"connection to {service} at {url} failed ({reason})"
        super().__init__(text)


def _describe(exc: httpx.RequestError) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def transport_failure(service: str, base_url: str, exc: httpx.RequestError) -> ServiceUnreachable:
    """Wrap an httpx transport exception; connect errors/timeouts read as "cannot reach"."""
    connect = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
    return ServiceUnreachable(service=service, url=base_url, reason=_describe(exc), connect=connect)


def error_from_response(service: str, response: httpx.Response) -> ApiError:
    """Build an :class:`ApiError` from a failed response, tolerating non-contract bodies.

    A proxy in front of the service may answer 502 with HTML, so a body that is not the
    contract's envelope still yields a readable code (``http_<status>``) and message.
    """
    status = response.status_code
    code = f"http_{status}"
    message = response.reason_phrase or "request failed"
    details: dict[str, Any] = {}
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = str(err.get("code") or code)
        message = str(err.get("message") or message)
        if isinstance(err.get("details"), dict):
            details = err["details"]
    elif isinstance(body, dict) and "detail" in body:
        # FastAPI's default validation/HTTPException shape, in case a route bypasses the
        # envelope: still better than a bare status.
        message = str(body["detail"])
    else:
        # Only short plain-text bodies are worth showing; an HTML error page is noise.
        text = " ".join(response.text.split())
        ctype = response.headers.get("content-type", "")
        if text and "html" not in ctype and not text.startswith("<"):
            message = text[:200]
    return ApiError(service=service, status=status, code=code, message=message, details=details)


def validation_problems(details: Mapping[str, Any]) -> list[str]:
    """``field.path: message`` for each entry of a validation error's ``details.errors``."""
    errors = details.get("errors")
    if not isinstance(errors, list):
        return []
    lines = []
    for err in errors:
        if not isinstance(err, dict):
            continue
        loc = [str(part) for part in err.get("loc") or []]
        if loc[:1] == ["body"]:  # every problem of a JSON body is under "body"
            loc = loc[1:]
        msg = str(err.get("msg") or "invalid")
        msg = msg.removeprefix("Value error, ")  # pydantic's prefix for validator errors
        lines.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return lines


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    """Drop unset query parameters so the server applies its defaults."""
    return {k: v for k, v in params.items() if v is not None and v != []}


def _seg(value: str) -> str:
    """Quote one path segment so an id or slug can never escape its position in the URL."""
    return quote(value, safe="")


def _default_headers(api_key: str) -> dict[str, str]:
    return {API_KEY_HEADER: api_key, "User-Agent": USER_AGENT, "Accept": "application/json"}


def collect_pages(
    fetch: Callable[[int, str | None], Page[T]], limit: int, page_size: int = PAGE_SIZE
) -> Page[T]:
    """Follow ``next_cursor`` until ``limit`` items are gathered or the listing ends.

    ``fetch(page_limit, cursor)`` returns one page. The result's ``next_cursor`` lets a
    caller continue where this stopped (``None`` when the listing is exhausted).
    """
    items: list[T] = []
    cursor: str | None = None
    while len(items) < limit:
        page = fetch(min(page_size, limit - len(items)), cursor)
        got = page.get("items") or []
        items.extend(got)
        cursor = page.get("next_cursor")
        # An empty page with a cursor would loop forever against a misbehaving server.
        if not cursor or not got:
            break
    if len(items) > limit:
        items = items[:limit]
    return {"items": items, "next_cursor": cursor}


# --------------------------------------------------------------------------- sync clients


class _ServiceClient:
    """Shared plumbing: auth header, error decoding, JSON parsing."""

    service = "service"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_default_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    def __enter__(self) -> _ServiceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        timeout: httpx.Timeout | None = None,
    ) -> Any:
        try:
            response = self._http.request(
                method,
                path,
                params=_clean(params or {}),
                json=json,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.RequestError as exc:
            raise transport_failure(self.service, self.base_url, exc) from exc
        if response.is_error:
            raise error_from_response(self.service, response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                service=self.service,
                status=response.status_code,
                code="invalid_response",
                message=f"{self.service} answered {method} {path} with a non-JSON body",
            ) from exc


class IngestClient(_ServiceClient):
    """Synchronous client for the ingest service (datasets, assets, API keys)."""

    service = "ingest"

    def __enter__(self) -> IngestClient:
        return self

    # datasets
    def create_dataset(self, slug: str, name: str) -> Dataset:
        """``POST /v1/datasets``; raises ApiError ``dataset_exists`` (409) on a taken slug."""
        return cast(
            Dataset, self._request("POST", "/v1/datasets", json={"slug": slug, "name": name})
        )

    def list_datasets(self, *, limit: int = 50, cursor: str | None = None) -> Page[Dataset]:
        """One page of ``GET /v1/datasets``."""
        params = {"limit": limit, "cursor": cursor}
        return cast(Page[Dataset], self._request("GET", "/v1/datasets", params=params))

    def get_dataset(self, slug: str) -> Dataset:
        """``GET /v1/datasets/{slug}``; raises ApiError ``dataset_not_found`` (404)."""
        return cast(Dataset, self._request("GET", f"/v1/datasets/{_seg(slug)}"))

    # assets
    def lookup_assets(self, slug: str, sha256: list[str]) -> dict[str, str]:
        """Map each already-stored hash of ``sha256`` (≤1000 per call) to its asset id."""
        body = self._request(
            "POST", f"/v1/datasets/{_seg(slug)}/assets/lookup", json={"sha256": sha256}
        )
        known = body.get("known") if isinstance(body, dict) else None
        return {str(k): str(v) for k, v in (known or {}).items()}

    def list_assets(
        self,
        slug: str,
        *,
        limit: int = 100,
        cursor: str | None = None,
        media_type: str | None = None,
        source: str | None = None,
        tag: str | None = None,
    ) -> Page[Asset]:
        """One page of ``GET /v1/datasets/{slug}/assets`` with optional filters."""
        params = {
            "limit": limit,
            "cursor": cursor,
            "media_type": media_type,
            "source": source,
            "tag": tag,
        }
        path = f"/v1/datasets/{_seg(slug)}/assets"
        return cast(Page[Asset], self._request("GET", path, params=params))

    def get_asset(self, asset_id: str) -> AssetDetail:
        """``GET /v1/assets/{id}``: the asset with a temporary download URL."""
        return cast(AssetDetail, self._request("GET", f"/v1/assets/{_seg(asset_id)}"))

    # api keys
    def create_api_key(
        self, name: str, role: str, datasets: list[str] | None = None
    ) -> CreatedApiKey:
        """``POST /v1/api-keys`` (admin only); the answer holds the secret once.

        ``datasets``: slugs the key is limited to; None for every dataset.
        """
        body = {"name": name, "role": role, "datasets": datasets}
        return cast(CreatedApiKey, self._request("POST", "/v1/api-keys", json=body))

    def set_api_key_datasets(self, key_id: str, datasets: list[str] | None) -> ApiKey:
        """``PUT /v1/api-keys/{id}/datasets`` (admin only): limit a key, or lift the limit."""
        path = f"/v1/api-keys/{_seg(key_id)}/datasets"
        return cast(ApiKey, self._request("PUT", path, json={"datasets": datasets}))

    def list_api_keys(self) -> list[ApiKey]:
        """``GET /v1/api-keys``."""
        body = self._request("GET", "/v1/api-keys")
        return cast(list[ApiKey], body.get("items", []) if isinstance(body, dict) else [])

    def revoke_api_key(self, key_id: str) -> None:
        """``DELETE /v1/api-keys/{id}``."""
        self._request("DELETE", f"/v1/api-keys/{_seg(key_id)}")


class CleanClient(_ServiceClient):
    """Synchronous client for the clean service (quality reports, duplicates, policies)."""

    service = "clean"

    def __enter__(self) -> CleanClient:
        return self

    def quality_report(self, asset_id: str) -> QualityReport:
        """``GET /v1/assets/{id}/quality``; ApiError ``report_not_found`` (404) until judged."""
        return cast(QualityReport, self._request("GET", f"/v1/assets/{_seg(asset_id)}/quality"))

    def quality_summary(self, slug: str) -> QualitySummary:
        """``GET /v1/datasets/{slug}/quality``; ApiError ``dataset_not_found`` (404)."""
        return cast(QualitySummary, self._request("GET", f"/v1/datasets/{_seg(slug)}/quality"))

    def duplicates(self, slug: str) -> DuplicateGroups:
        """``GET /v1/datasets/{slug}/duplicates``."""
        return cast(DuplicateGroups, self._request("GET", f"/v1/datasets/{_seg(slug)}/duplicates"))

    def get_policy(self, slug: str) -> Policy:
        """``GET /v1/datasets/{slug}/policy``: the effective policy, defaults spelled out."""
        return cast(Policy, self._request("GET", f"/v1/datasets/{_seg(slug)}/policy"))

    def set_policy(self, slug: str, rules: PolicyRules) -> Reevaluation:
        """``PUT /v1/datasets/{slug}/policy`` (admin): replace the policy, re-judge the assets."""
        path = f"/v1/datasets/{_seg(slug)}/policy"
        body = self._request("PUT", path, json=rules, timeout=POLICY_TIMEOUT)
        return cast(Reevaluation, body)

    def start_reanalysis(self, slug: str, *, rejudge: bool = True) -> Reanalysis:
        """``POST /v1/datasets/{slug}/reanalyses`` (admin): queue a re-analysis; ApiError
        ``reanalysis_running`` (409) while one is under way."""
        path = f"/v1/datasets/{_seg(slug)}/reanalyses"
        return cast(Reanalysis, self._request("POST", path, json={"rejudge": rejudge}))

    def get_reanalysis(self, reanalysis_id: str) -> Reanalysis:
        """``GET /v1/reanalyses/{id}``: state, counts, rate and time left."""
        return cast(Reanalysis, self._request("GET", f"/v1/reanalyses/{_seg(reanalysis_id)}"))

    def list_reanalyses(
        self, slug: str, *, limit: int = 20, cursor: str | None = None
    ) -> Page[Reanalysis]:
        """One page of ``GET /v1/datasets/{slug}/reanalyses`` (newest first)."""
        path = f"/v1/datasets/{_seg(slug)}/reanalyses"
        params = {"limit": limit, "cursor": cursor}
        return cast(Page[Reanalysis], self._request("GET", path, params=params))

    def cancel_reanalysis(self, reanalysis_id: str) -> Reanalysis:
        """``POST /v1/reanalyses/{id}/cancel`` (admin); ApiError ``reanalysis_finished`` (409)."""
        path = f"/v1/reanalyses/{_seg(reanalysis_id)}/cancel"
        return cast(Reanalysis, self._request("POST", path))

    def store_sources(self, slug: str, sources: SourcesIn) -> SourcesStored:
        """``POST /v1/datasets/{slug}/sources`` (admin): give reports made before sources were
        stored their conveyor.asset.ingested.v1 payloads (at most 500 per call)."""
        path = f"/v1/datasets/{_seg(slug)}/sources"
        return cast(SourcesStored, self._request("POST", path, json=sources))


class AuditClient(_ServiceClient):
    """Synchronous client for the audit service."""

    service = "audit"

    def __enter__(self) -> AuditClient:
        return self

    def list_records(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        type: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditRecord]:
        """One page of ``GET /v1/audit/records``."""
        params = {
            "subject": subject,
            "actor": actor,
            "type": type,
            "since": since,
            "until": until,
            "limit": limit,
            "cursor": cursor,
        }
        return cast(Page[AuditRecord], self._request("GET", "/v1/audit/records", params=params))

    def asset_timeline(self, asset_id: str) -> Timeline:
        """``GET /v1/audit/assets/{id}/timeline``."""
        return cast(Timeline, self._request("GET", f"/v1/audit/assets/{_seg(asset_id)}/timeline"))

    def verify(self) -> VerifyResult:
        """``POST /v1/audit/verify``: re-check the whole hash chain server-side."""
        return cast(VerifyResult, self._request("POST", "/v1/audit/verify"))

    def export(
        self,
        sink: IO[bytes],
        *,
        subject: str | None = None,
        type: str | None = None,
        since: str | None = None,
        until: str | None = None,
        on_records: Callable[[int], None] | None = None,
    ) -> int:
        """Stream ``GET /v1/audit/export`` (NDJSON) into ``sink`` byte-for-byte.

        Returns the number of records (lines) written; ``on_records(n)`` is called as
        lines arrive so a progress counter can follow a long export.
        """
        params = _clean({"subject": subject, "type": type, "since": since, "until": until})
        headers = {"Accept": "application/x-ndjson"}
        count = 0
        last = b"\n"
        try:
            with self._http.stream(
                "GET", "/v1/audit/export", params=params, headers=headers, timeout=EXPORT_TIMEOUT
            ) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(self.service, response)
                for chunk in response.iter_bytes():
                    if not chunk:
                        continue
                    sink.write(chunk)
                    lines = chunk.count(b"\n")
                    last = chunk[-1:]
                    if lines:
                        count += lines
                        if on_records is not None:
                            on_records(lines)
        except httpx.RequestError as exc:
            raise transport_failure(self.service, self.base_url, exc) from exc
        if last != b"\n":
            # The last record had no trailing newline; it is still a record.
            count += 1
            if on_records is not None:
                on_records(1)
        return count


class LabelingClient(_ServiceClient):
    """Synchronous client for the labeling-dispatch service (ontologies, vendors, jobs, tasks,
    deliveries)."""

    service = "labeling"

    def __enter__(self) -> LabelingClient:
        return self

    # ontologies
    def create_ontology(self, name: str, classes: list[OntologyClass]) -> OntologyVersion:
        """``POST /v1/ontologies`` (admin): the ontology's version 1; ApiError
        ``ontology_exists`` (409) on a taken name, ``validation_error`` (422) on a bad spec."""
        body = {"name": name, "classes": classes}
        return cast(OntologyVersion, self._request("POST", "/v1/ontologies", json=body))

    def add_ontology_version(self, ontology: str, classes: list[OntologyClass]) -> OntologyVersion:
        """``POST /v1/ontologies/{ontology}/versions`` (admin): the next version."""
        path = f"/v1/ontologies/{_seg(ontology)}/versions"
        return cast(OntologyVersion, self._request("POST", path, json={"classes": classes}))

    def list_ontologies(self, *, limit: int = 50, cursor: str | None = None) -> Page[Ontology]:
        """One page of ``GET /v1/ontologies``."""
        params = {"limit": limit, "cursor": cursor}
        return cast(Page[Ontology], self._request("GET", "/v1/ontologies", params=params))

    def get_ontology(self, ontology: str) -> OntologyDetail:
        """``GET /v1/ontologies/{id or name}``: the latest version and the list of versions."""
        return cast(OntologyDetail, self._request("GET", f"/v1/ontologies/{_seg(ontology)}"))

    def get_ontology_version(self, ontology: str, version: int) -> OntologyVersion:
        """``GET /v1/ontologies/{id or name}/versions/{version}``."""
        path = f"/v1/ontologies/{_seg(ontology)}/versions/{version}"
        return cast(OntologyVersion, self._request("GET", path))

    # vendors
    def create_vendor(
        self,
        name: str,
        *,
        url: str | None,
        capacity: int,
        batch_size: int,
        kind: str = "webhook",
        token: str | None = None,
    ) -> VendorWithCredentials:
        """``POST /v1/vendors`` (admin): a webhook or Label Studio vendor; the answer holds its
        key and secret this once."""
        body: dict[str, object] = {
            "name": name,
            "kind": kind,
            "url": url,
            "capacity": capacity,
            "batch_size": batch_size,
        }
        if token is not None:
            body["token"] = token
        return cast(VendorWithCredentials, self._request("POST", "/v1/vendors", json=body))

    def list_vendors(self, *, limit: int = 50, cursor: str | None = None) -> Page[Vendor]:
        """One page of ``GET /v1/vendors``."""
        params = {"limit": limit, "cursor": cursor}
        return cast(Page[Vendor], self._request("GET", "/v1/vendors", params=params))

    # jobs
    def create_job(
        self,
        name: str,
        *,
        dataset: str,
        ontology: str,
        ontology_version: int | None,
        vendor_ids: list[str],
        overlap: int,
        gold_ratio: float,
        priority: JobPriority,
        lease_seconds: int | None,
    ) -> JobDetail:
        """``POST /v1/jobs`` (admin): the dataset's cleaned images are queued at once."""
        body = {
            "name": name,
            "dataset": dataset,
            "ontology": ontology,
            "ontology_version": ontology_version,
            "vendor_ids": vendor_ids,
            "overlap": overlap,
            "gold_ratio": gold_ratio,
            "priority": priority,
            "lease_seconds": lease_seconds,
        }
        return cast(JobDetail, self._request("POST", "/v1/jobs", json=body))

    def list_jobs(
        self,
        *,
        dataset: str | None = None,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Job]:
        """One page of ``GET /v1/jobs`` (a dataset slug or id, a state)."""
        params = {"dataset": dataset, "state": state, "limit": limit, "cursor": cursor}
        return cast(Page[Job], self._request("GET", "/v1/jobs", params=params))

    def get_job(self, job_id: str) -> JobDetail:
        """``GET /v1/jobs/{id}``: the job with its progress per vendor."""
        return cast(JobDetail, self._request("GET", f"/v1/jobs/{_seg(job_id)}"))

    def label_studio_projects(self, job_id: str) -> list[LabelStudioProject]:
        """``GET /v1/jobs/{id}/label-studio``: where the job is labeled in Label Studio."""
        return cast(
            list[LabelStudioProject],
            self._request("GET", f"/v1/jobs/{_seg(job_id)}/label-studio"),
        )

    def change_job(self, job_id: str, action: JobAction) -> JobDetail:
        """``POST /v1/jobs/{id}/pause|resume|cancel`` (admin); ApiError (409) when the job's
        state does not allow it."""
        return cast(JobDetail, self._request("POST", f"/v1/jobs/{_seg(job_id)}/{action}"))

    # tasks
    def list_tasks(
        self,
        *,
        job_id: str | None = None,
        vendor_id: str | None = None,
        state: TaskState | None = None,
        asset_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Task]:
        """One page of ``GET /v1/tasks`` (by job, vendor, state, asset)."""
        params = {
            "job_id": job_id,
            "vendor_id": vendor_id,
            "state": state,
            "asset_id": asset_id,
            "limit": limit,
            "cursor": cursor,
        }
        return cast(Page[Task], self._request("GET", "/v1/tasks", params=params))

    # deliveries
    def list_deliveries(
        self,
        *,
        vendor_id: str | None = None,
        job_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Delivery]:
        """One page of ``GET /v1/deliveries`` (newest first)."""
        params = {
            "vendor_id": vendor_id,
            "job_id": job_id,
            "status": status,
            "limit": limit,
            "cursor": cursor,
        }
        return cast(Page[Delivery], self._request("GET", "/v1/deliveries", params=params))

    def get_delivery(self, delivery_id: str) -> DeliveryDetail:
        """``GET /v1/deliveries/{id}``: the delivery with every try."""
        return cast(DeliveryDetail, self._request("GET", f"/v1/deliveries/{_seg(delivery_id)}"))

    def redeliver(self, delivery_id: str) -> DeliveryDetail:
        """``POST /v1/deliveries/{id}/redeliver`` (admin): try a failed delivery once more, now;
        ApiError (409) if it is not failed or none of its tasks can be given back."""
        path = f"/v1/deliveries/{_seg(delivery_id)}/redeliver"
        return cast(DeliveryDetail, self._request("POST", path))


class QcClient(_ServiceClient):
    """Synchronous client for the qc service (the review queue)."""

    service = "qc"

    def __enter__(self) -> QcClient:
        return self

    def list_reviews(
        self,
        *,
        job_id: str | None = None,
        state: ReviewState | None = None,
        dataset: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Review]:
        """One page of ``GET /v1/reviews`` (the service lists state ``review`` by default)."""
        params = {
            "job_id": job_id,
            "state": state,
            "dataset": dataset,
            "limit": limit,
            "cursor": cursor,
        }
        return cast(Page[Review], self._request("GET", "/v1/reviews", params=params))

    def get_review(self, job_id: str, asset_id: str) -> ReviewDetail:
        """``GET /v1/reviews/{job}/{asset}``: every live answer, the consensus, the tasks."""
        return cast(ReviewDetail, self._request("GET", _review_path(job_id, asset_id)))

    def accept_review(self, job_id: str, asset_id: str, *, comment: str | None) -> ReviewDetail:
        """``POST .../accept`` (uploader): the consensus becomes the asset's labels; ApiError
        ``review_not_open`` (409) when the review is not waiting for a person."""
        body = {} if comment is None else {"comment": comment}
        path = f"{_review_path(job_id, asset_id)}/accept"
        return cast(ReviewDetail, self._request("POST", path, json=body))

    def reject_review(self, job_id: str, asset_id: str, *, comment: str) -> ReviewDetail:
        """``POST .../reject`` (uploader), with the reason."""
        path = f"{_review_path(job_id, asset_id)}/reject"
        return cast(ReviewDetail, self._request("POST", path, json={"comment": comment}))

    def rework_review(
        self, job_id: str, asset_id: str, *, comment: str, vendor_id: str | None = None
    ) -> ReviewDetail:
        """``POST .../rework`` (uploader): the asset's answered tasks go back to the vendors
        that answered them, or all to ``vendor_id``."""
        body = {"comment": comment, "vendor_id": vendor_id}
        path = f"{_review_path(job_id, asset_id)}/rework"
        return cast(ReviewDetail, self._request("POST", path, json=_clean(body)))

    def list_scorecards(
        self, *, job_id: str | None = None, since: str | None = None, until: str | None = None
    ) -> ScorecardList:
        """``GET /v1/scorecards``: every vendor's scorecard over the window (ISO times)."""
        params = {"job_id": job_id, "since": since, "until": until}
        return cast(ScorecardList, self._request("GET", "/v1/scorecards", params=params))

    def vendor_scorecard(
        self,
        vendor_id: str,
        *,
        job_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> VendorScorecard:
        """``GET /v1/vendors/{id}/scorecard``: one vendor's scorecard and its trend by day."""
        params = {"job_id": job_id, "since": since, "until": until}
        path = f"/v1/vendors/{_seg(vendor_id)}/scorecard"
        return cast(VendorScorecard, self._request("GET", path, params=params))

    def list_versions(
        self, dataset: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[DatasetVersion]:
        """One page of ``GET /v1/datasets/{dataset}/versions``, oldest first."""
        params = {"limit": limit, "cursor": cursor}
        path = f"/v1/datasets/{_seg(dataset)}/versions"
        return cast(Page[DatasetVersion], self._request("GET", path, params=params))

    def create_version(self, dataset: str) -> DatasetVersion:
        """``POST /v1/datasets/{dataset}/versions`` (uploader): freeze the accepted labels; the
        existing version when one already holds exactly this content."""
        path = f"/v1/datasets/{_seg(dataset)}/versions"
        return cast(DatasetVersion, self._request("POST", path))

    def request_export(
        self,
        dataset: str,
        number: int,
        *,
        export_format: Literal["coco", "yolo"],
        images: Literal["include", "links"],
    ) -> DatasetExport:
        """``POST .../versions/{n}/exports`` (uploader): queue an export (built in the
        background; follow it with :meth:`get_export`)."""
        path = f"/v1/datasets/{_seg(dataset)}/versions/{number}/exports"
        body = {"format": export_format, "images": images}
        return cast(DatasetExport, self._request("POST", path, json=body))

    def get_export(self, export_id: str) -> DatasetExport:
        """``GET /v1/exports/{id}``: state, progress, and a time-limited download URL."""
        return cast(DatasetExport, self._request("GET", f"/v1/exports/{_seg(export_id)}"))


def _review_path(job_id: str, asset_id: str) -> str:
    return f"/v1/reviews/{_seg(job_id)}/{_seg(asset_id)}"


# --------------------------------------------------------------------------- async upload


@dataclass(frozen=True, slots=True)
class UploadPart:
    """One ``files`` part of an upload request."""

    filename: str
    stream: IO[bytes]
    media_type: str


class AsyncIngestClient:
    """Async client used by the concurrent upload engine (several files per request)."""

    service = "ingest"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_connections: int = 8,
        timeout: httpx.Timeout = UPLOAD_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_default_headers(api_key),
            timeout=timeout,
            limits=limits,
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncIngestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def upload_assets(
        self, slug: str, *, parts: Sequence[UploadPart], tags: list[str]
    ) -> list[Asset]:
        """``POST /v1/datasets/{slug}/assets`` with one streamed ``files`` part per file.

        httpx reads each stream in 64 KiB chunks while sending, so no file is held in memory;
        lengths come from ``fstat`` so the request has a Content-Length.
        """
        path = f"/v1/datasets/{_seg(slug)}/assets"
        files = [("files", (p.filename, p.stream, p.media_type)) for p in parts]
        data = {"tags": tags} if tags else None
        try:
            response = await self._http.post(path, files=files, data=data)
        except httpx.RequestError as exc:
            raise transport_failure(self.service, self.base_url, exc) from exc
        if response.is_error:
            raise error_from_response(self.service, response)
        try:
            body: Any = response.json()
            items = body["items"]
            if not isinstance(items, list) or len(items) != len(parts):
                raise ValueError("one item per file expected")
            return cast(list[Asset], items)
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(
                service=self.service,
                status=response.status_code,
                code="invalid_response",
                message=f"upload answer does not have {len(parts)} items",
            ) from exc
