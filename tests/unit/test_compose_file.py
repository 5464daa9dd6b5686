"""docker-compose.yml against the compose-spec schema, and against the code it runs.

No Docker engine is needed (the build machine has none): the file is validated with the
compose-spec JSON schema that check-jsonschema vendors, then cross-checked with the
settings classes, the files it mounts, the SeaweedFS configuration and the pinned versions,
so a renamed setting or a moved port fails here instead of in someone's `compose up`.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import tomllib
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from pydantic_settings import SettingsConfigDict

from shared import endpoints
from shared.settings import ServiceSettings
from shared.storage import LANDING_BUCKET

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
SEAWEEDFS_DIR = REPO / "deploy" / "compose" / "seaweedfs"
VERSIONS_ENV = REPO / "deploy" / "stack" / "versions.env"

INFRASTRUCTURE = ("postgres", "kafka", "seaweedfs")

# Service-specific settings (type, default) of a service whose services/<name>/settings.py
# is not written yet, as the design brief lists them. Once the module exists it is used.
FALLBACK_SETTINGS: dict[str, dict[str, tuple[Any, Any]]] = {
    "ingest": {
        "port": (int, endpoints.INGEST_PORT),
        "objectstore_webhook_token": (str, "dev-objectstore-token"),
        "max_upload_bytes": (int, 5 * 1024**3),
    },
    "audit": {"port": (int, endpoints.AUDIT_PORT), "ingest_url": (str, endpoints.INGEST_URL)},
}

# Every key the webhook notifier of SeaweedFS 4.48 reads (`weed scaffold -config=notification`);
# weed ignores unknown keys silently, so a typo would disable what it was meant to set.
WEBHOOK_KEYS = {
    "enabled",
    "endpoint",
    "bearer_token",
    "timeout_seconds",
    "max_retries",
    "backoff_seconds",
    "max_backoff_seconds",
    "workers",
    "buffer_size",
    "event_types",
    "path_prefixes",
}
# Where `weed` in the image finds notification.toml: its working directory (/data) or
# /etc/seaweedfs/.
NOTIFICATION_PATHS = {"/data/notification.toml", "/etc/seaweedfs/notification.toml"}

INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# ------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def interpolate(value: str) -> str:
    """Compose interpolation with the defaults only (the developer's shell is ignored)."""

    def sub(match: re.Match[str]) -> str:
        name, op, default = match.groups()
        if op and op.endswith("?"):
            pytest.fail(f"${{{name}}} is required; give it a dev default instead")
        return default or ""

    return INTERPOLATION.sub(sub, value).replace("$$", "$")


def environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as compose passes it (pass-through entries left out)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {
        k: interpolate(str(v)).lower() if isinstance(v, bool) else interpolate(str(v))
        for k, v in env.items()
        if v is not None
    }


def conveyor_services(compose: dict[str, Any]) -> dict[str, str]:
    """Compose service name -> Conveyor package (services.<package>) for our own services."""
    built_images = {s.get("image") for s in compose["services"].values() if "build" in s}
    found = {}
    for name, service in compose["services"].items():
        if "build" not in service and service.get("image") not in built_images:
            continue
        command = service.get("command") or ["python", "-m", "services.ingest"]  # image CMD
        if isinstance(command, str):
            command = command.split()
        module = next((c for c in command if c.startswith("services.")), None)
        assert module, f"{name}: command {command} does not run a services.<name> module"
        found[name] = module.split(".")[1]
    return found


def settings_class(package: str) -> type[ServiceSettings]:
    """The settings class of services/<package>/settings.py, or a stand-in built from
    FALLBACK_SETTINGS while that module is not written yet."""
    module_name = f"services.{package}.settings"
    if not (REPO / "services" / package / "settings.py").exists():
        fields = FALLBACK_SETTINGS.get(package)
        assert fields is not None, f"{module_name} is missing and has no fallback"
        namespace: dict[str, Any] = {
            "__annotations__": {name: kind for name, (kind, _) in fields.items()},
            **{name: default for name, (_, default) in fields.items()},
            "model_config": SettingsConfigDict(
                env_prefix=f"CONVEYOR_{package.upper()}_", extra="ignore"
            ),
        }
        return type(f"Fallback{package.title()}Settings", (ServiceSettings,), namespace)
    module = importlib.import_module(module_name)
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, ServiceSettings)
        and obj.__module__ == module_name
    ]
    assert len(classes) == 1, f"{module_name} should define one ServiceSettings subclass"
    return classes[0]


def env_names(cls: type[ServiceSettings]) -> set[str]:
    """Every environment variable the settings class reads (service prefix and CONVEYOR_)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names = set()
    for field in cls.model_fields:
        names.add(f"{prefix}{field}".upper())
        names.add(f"CONVEYOR_{field}".upper())
        info = cls.model_fields.get(field)
        for alias in (info.alias, info.validation_alias) if info else ():
            if isinstance(alias, str):
                names.add(alias.upper())
    return names


def known_setting_names(packages: Iterable[str]) -> set[str]:
    names = env_names(ServiceSettings)
    for package in packages:
        names |= env_names(settings_class(package))
    return names


def effective_settings(
    package: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """What the service would see: its settings class loaded from the compose environment."""
    cls = settings_class(package)
    with monkeypatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("CONVEYOR_", "OTEL_")):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return cls().model_dump()


def published_ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) pairs."""
    ports = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.append((int(entry["published"]), int(entry["target"])))
            continue
        parts = interpolate(str(entry)).split("/")[0].split(":")
        ports.append((int(parts[-2]) if len(parts) > 1 else 0, int(parts[-1])))
    return ports


def healthcheck_urls(service: dict[str, Any]) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test") or []
    text = " ".join(test) if isinstance(test, list) else str(test)
    return re.findall(r"https?://[^\s'\"]+", text)


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            if entry.get("type") == "bind":
                mounts.append((entry["source"], entry["target"]))
            continue
        source, target = str(entry).split(":")[:2]
        if source.startswith((".", "/", "~")):
            mounts.append((source, target))
    return mounts


def image_tag(image: str) -> str:
    name = image.split("@", 1)[0]
    return name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""


def command_flags(service: dict[str, Any]) -> dict[str, str]:
    command = service.get("command") or []
    if isinstance(command, str):
        command = command.split()
    return dict(arg.lstrip("-").split("=", 1) for arg in command if "=" in arg)


def webhook_config() -> dict[str, Any]:
    data = tomllib.loads((SEAWEEDFS_DIR / "notification.toml").read_text())
    return dict(data["notification"]["webhook"])


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


# --------------------------------------------------------------------------- the schema


def compose_schema() -> dict[str, Any]:
    path = files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return dict(json.loads(path.read_text()))


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(compose_schema())
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(document)
    )


def test_compose_file_is_valid_compose_spec(compose: dict[str, Any]) -> None:
    errors = schema_errors(compose)
    assert not errors, "\n".join(errors)


def test_schema_check_catches_a_mistake(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["ingest"]["helthcheck"] = broken["services"]["ingest"].pop("healthcheck")
    assert schema_errors(broken), "the schema accepted a misspelt key; the check is vacuous"


def test_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        if image is None:
            assert "build" in service, name
            continue
        tag = image_tag(image)
        assert tag and tag != "latest", f"{name}: pin {image!r} to a version tag"


# ------------------------------------------------------------------- health and startup


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_conveyor_services_wait_for_healthy_infrastructure(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in conveyor_services(compose):
        depends = services[name].get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: use the long depends_on form with conditions"
        for infra in INFRASTRUCTURE:
            assert depends.get(infra, {}).get("condition") == "service_healthy", (name, infra)
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for target, spec in depends.items() if isinstance(depends, dict) else []:
            assert target in services, f"{name} depends on unknown service {target}"
            if spec.get("condition") == "service_healthy":
                assert services[target].get("healthcheck"), f"{target} has no healthcheck"


def test_conveyor_healthchecks_probe_healthz_on_the_service_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, package in conveyor_services(compose).items():
        service = compose["services"][name]
        settings = effective_settings(package, environment(service), monkeypatch)
        urls = healthcheck_urls(service)
        assert urls, f"{name}: healthcheck does not call an HTTP endpoint"
        for url in urls:
            parts = urlsplit(url)
            assert parts.port == settings["port"], f"{name}: {url} vs port {settings['port']}"
            assert parts.path in ("/healthz", "/readyz"), url


# --------------------------------------------------------------- settings and ports


def test_every_conveyor_variable_is_a_real_setting(compose: dict[str, Any]) -> None:
    known = known_setting_names({*conveyor_services(compose).values(), *FALLBACK_SETTINGS})
    for path in (COMPOSE, DOCKERFILE):
        used = set(re.findall(r"\bCONVEYOR_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
        unknown = sorted(used - known)
        assert not unknown, f"{path.name} sets variables no settings class reads: {unknown}"


def test_services_listen_where_they_are_published(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, package in conveyor_services(compose).items():
        service = compose["services"][name]
        settings = effective_settings(package, environment(service), monkeypatch)
        assert settings["host"] == "0.0.0.0", f"{name} must bind 0.0.0.0 in a container"
        port = settings["port"]
        assert published_ports(service) == [(port, port)], (
            f"{name} publishes {published_ports(service)} but listens on {port}"
        )
    # The same ports as on a development machine without Docker.
    for name, port in {"ingest": endpoints.INGEST_PORT, "audit": endpoints.AUDIT_PORT}.items():
        assert published_ports(compose["services"][name]) == [(port, port)], name


def test_connection_settings_point_at_the_compose_services(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    postgres = environment(services["postgres"])
    kafka = environment(services["kafka"])
    seaweed_flags = command_flags(services["seaweedfs"])
    for name, package in conveyor_services(compose).items():
        common = effective_settings(package, environment(services[name]), monkeypatch)
        db = urlsplit(common["database_url"])
        assert (db.hostname, db.port or 5432) == ("postgres", 5432), name
        assert db.username == postgres["POSTGRES_USER"], name
        assert db.password == postgres["POSTGRES_PASSWORD"], name
        assert db.path.lstrip("/") == postgres["POSTGRES_DB"], name
        advertised = kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert f"PLAINTEXT://{common['kafka_bootstrap_servers']}" in advertised, name
        assert common["s3_endpoint"] == f"seaweedfs:{seaweed_flags['s3.port']}", name
        assert common["environment"] == "development", name


def test_audit_reaches_ingest(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    ingest = effective_settings("ingest", environment(compose["services"]["ingest"]), monkeypatch)
    audit = effective_settings("audit", environment(compose["services"]["audit"]), monkeypatch)
    assert audit["ingest_url"] == f"http://ingest:{ingest['port']}"


# ----------------------------------------------------------------- mounted files, SeaweedFS


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for source, _ in bind_mounts(service):
            assert (REPO / source).exists(), f"{name} mounts missing {source}"
        if "build" in service:
            build = service["build"]
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
            assert (REPO / context / (dockerfile or "Dockerfile")).is_file(), name


def test_seaweedfs_loads_the_mounted_configuration(compose: dict[str, Any]) -> None:
    service = compose["services"]["seaweedfs"]
    mounts = dict((target, source) for source, target in bind_mounts(service))
    identities = command_flags(service)["s3.config"]
    assert identities in mounts, "-s3.config must name the mounted identities.json"
    notification = [t for t in mounts if t.endswith("/notification.toml")]
    assert len(notification) == 1 and notification[0] in NOTIFICATION_PATHS, notification


def test_s3_credentials_match_the_identities_file(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    identities = json.loads((SEAWEEDFS_DIR / "identities.json").read_text())["identities"]
    by_key = {
        cred["accessKey"]: (cred["secretKey"], set(identity.get("actions", [])))
        for identity in identities
        for cred in identity.get("credentials", [])
    }
    for name in conveyor_services(compose):
        env = environment(compose["services"][name])
        key, secret = env["CONVEYOR_S3_ACCESS_KEY"], env["CONVEYOR_S3_SECRET_KEY"]
        assert key in by_key, f"{name}: access key {key} is not in identities.json"
        assert by_key[key][0] == secret, f"{name}: secret differs from identities.json"
        # Admin: services create the buckets they need on start.
        assert {"Admin", "Read", "Write", "List"} <= by_key[key][1], by_key[key][1]


def test_webhook_posts_to_ingest_with_its_token(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook = webhook_config()
    assert set(webhook) <= WEBHOOK_KEYS, f"unknown keys: {sorted(set(webhook) - WEBHOOK_KEYS)}"
    assert webhook["enabled"] is True
    ingest = effective_settings("ingest", environment(compose["services"]["ingest"]), monkeypatch)
    assert webhook["endpoint"] == f"http://ingest:{ingest['port']}/internal/objectstore/events"
    assert webhook["bearer_token"] == ingest["objectstore_webhook_token"]
    assert webhook.get("path_prefixes") == [f"/buckets/{LANDING_BUCKET}/"]
    assert {"create", "update"} <= set(webhook.get("event_types") or ["create", "update"])


# ------------------------------------------------------------------------------ versions


def test_images_match_deploy_stack_versions(compose: dict[str, Any]) -> None:
    if not VERSIONS_ENV.exists():
        pytest.skip(f"{VERSIONS_ENV.relative_to(REPO)} does not exist yet")
    # The compose file runs the same versions as the local stack (`make run`).
    versions = read_env_file(VERSIONS_ENV)
    services = compose["services"]
    assert "SEAWEEDFS_VERSION" in versions, "versions.env has no SEAWEEDFS_VERSION"
    assert image_tag(services["seaweedfs"]["image"]) == versions["SEAWEEDFS_VERSION"]
    if "KAFKA_VERSION" in versions:
        assert image_tag(services["kafka"]["image"]) == versions["KAFKA_VERSION"]
    if "POSTGRES_MAJOR" in versions:
        major = image_tag(services["postgres"]["image"]).split(".")[0].split("-")[0]
        assert major == versions["POSTGRES_MAJOR"]


# ---------------------------------------------------------------------------- Dockerfile


def test_dockerfile_basics() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base.group(1)), base
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and not users[-1].startswith(("root", "0")), "the image must not run as root"
    assert re.search(r"^HEALTHCHECK .*urllib.*/healthz", text, re.M | re.S)
    assert re.search(r'^CMD \["python", "-m", "services\.ingest"\]$', text, re.M)
    assert "[dev]" not in text, "dev dependencies do not belong in the image"
