"""Settings lookup (service prefix, then CONVEYOR_), production guards, roles, keys, blob keys."""

from __future__ import annotations

import hashlib
import os
import re

import pytest
from pydantic import ValidationError

from services.audit.settings import AuditSettings
from services.ingest.settings import IngestSettings
from shared.auth import KEY_PREFIX, Role, generate_api_key, hash_api_key
from shared.settings import DEV_ADMIN_KEY, DEV_S3_SECRET, DEV_WEBHOOK_TOKEN
from shared.storage import content_address

REAL_ADMIN_KEY = "cvk_9Qm3v1tA7rX2pLs8YdK4wN6cH0jB5eF"
REAL_S3_SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
REAL_WEBHOOK_TOKEN = "hook-2f8e1c9a7b3d4e5f"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CONVEYOR_* variable of the machine running the tests leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("CONVEYOR_"):
            monkeypatch.delenv(name)


# ---- lookup order -----------------------------------------------------------------------------


def test_settings_use_development_defaults_when_nothing_is_set() -> None:
    ingest, audit = IngestSettings(), AuditSettings()
    assert (ingest.environment, ingest.port, audit.port) == ("development", 8001, 8005)
    assert ingest.database_url == audit.database_url
    assert ingest.database_url.startswith("postgresql+asyncpg://")


def test_service_setting_falls_back_to_the_common_conveyor_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/common")
    monkeypatch.setenv("CONVEYOR_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    for settings in (IngestSettings(), AuditSettings()):
        assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/common"
        assert settings.kafka_bootstrap_servers == "kafka:9092"


def test_service_prefixed_variable_wins_over_the_common_one_for_that_service_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/common")
    monkeypatch.setenv("CONVEYOR_INGEST_DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/ingest")
    monkeypatch.setenv("CONVEYOR_AUDIT_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("CONVEYOR_LOG_LEVEL", "WARNING")
    ingest, audit = IngestSettings(), AuditSettings()
    assert ingest.database_url == "postgresql+asyncpg://u:p@db:5432/ingest"
    assert audit.database_url == "postgresql+asyncpg://u:p@db:5432/common"
    assert (ingest.log_level, audit.log_level) == ("WARNING", "DEBUG")


def test_service_specific_setting_is_read_from_its_service_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_INGEST_MAX_UPLOAD_BYTES", "1048576")
    monkeypatch.setenv("CONVEYOR_AUDIT_INGEST_URL", "http://ingest:8001")
    assert IngestSettings().max_upload_bytes == 1048576
    assert AuditSettings().ingest_url == "http://ingest:8001"


def test_explicit_arguments_win_over_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_INGEST_PORT", "9001")
    monkeypatch.setenv("CONVEYOR_PORT", "9000")
    assert IngestSettings().port == 9001
    assert IngestSettings(port=7000).port == 7000


def test_asyncpg_dsn_drops_the_sqlalchemy_driver_suffix() -> None:
    settings = IngestSettings(database_url="postgresql+asyncpg://u:p@h:1/db")
    assert settings.asyncpg_dsn == "postgresql://u:p@h:1/db"


# ---- production guards ------------------------------------------------------------------------


@pytest.mark.parametrize("settings_cls", [IngestSettings, AuditSettings])
def test_production_refuses_the_development_admin_key(settings_cls: type) -> None:
    with pytest.raises(ValidationError, match="bootstrap_admin_key"):
        settings_cls(environment="production", s3_secret_key=REAL_S3_SECRET)


@pytest.mark.parametrize("secret", [DEV_S3_SECRET, "conveyor", DEV_ADMIN_KEY, DEV_WEBHOOK_TOKEN])
@pytest.mark.parametrize("settings_cls", [IngestSettings, AuditSettings])
def test_production_refuses_a_development_s3_secret(settings_cls: type, secret: str) -> None:
    with pytest.raises(ValidationError, match="s3_secret_key"):
        settings_cls(
            environment="production", bootstrap_admin_key=REAL_ADMIN_KEY, s3_secret_key=secret
        )


def test_production_set_from_the_environment_is_guarded_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_ENVIRONMENT", "production")
    monkeypatch.setenv("CONVEYOR_S3_SECRET_KEY", REAL_S3_SECRET)
    with pytest.raises(ValidationError, match="bootstrap_admin_key"):
        AuditSettings()
    monkeypatch.setenv("CONVEYOR_BOOTSTRAP_ADMIN_KEY", REAL_ADMIN_KEY)
    assert AuditSettings().environment == "production"


def test_production_with_real_secrets_is_accepted() -> None:
    ingest = IngestSettings(
        environment="production",
        bootstrap_admin_key=REAL_ADMIN_KEY,
        s3_secret_key=REAL_S3_SECRET,
        objectstore_webhook_token=REAL_WEBHOOK_TOKEN,
    )
    audit = AuditSettings(
        environment="production", bootstrap_admin_key=REAL_ADMIN_KEY, s3_secret_key=REAL_S3_SECRET
    )
    assert (ingest.environment, audit.environment) == ("production", "production")
    assert ingest.bootstrap_admin_key == REAL_ADMIN_KEY
    assert ingest.objectstore_webhook_token == REAL_WEBHOOK_TOKEN


def test_development_keeps_the_documented_dev_secrets() -> None:
    settings = IngestSettings()
    assert settings.bootstrap_admin_key == DEV_ADMIN_KEY
    assert settings.s3_secret_key == DEV_S3_SECRET
    assert settings.objectstore_webhook_token == DEV_WEBHOOK_TOKEN


def test_production_refuses_the_development_webhook_token() -> None:
    with pytest.raises(ValidationError, match="objectstore_webhook_token"):
        IngestSettings(
            environment="production",
            bootstrap_admin_key=REAL_ADMIN_KEY,
            s3_secret_key=REAL_S3_SECRET,
        )


# ---- roles and keys ---------------------------------------------------------------------------


def test_role_rank_orders_viewer_below_uploader_below_admin() -> None:
    assert Role.viewer.rank < Role.uploader.rank < Role.admin.rank
    assert [r.rank for r in (Role.viewer, Role.uploader, Role.admin)] == [0, 1, 2]
    assert sorted(Role, key=lambda r: r.rank, reverse=True) == [
        Role.admin,
        Role.uploader,
        Role.viewer,
    ]


def test_roles_parse_from_their_string_values() -> None:
    assert [Role(v) for v in ("viewer", "uploader", "admin")] == list(Role)
    assert Role.admin == "admin"
    with pytest.raises(ValueError):
        Role("owner")


def test_generated_api_keys_are_unique_prefixed_and_url_safe() -> None:
    keys = [generate_api_key() for _ in range(200)]
    assert len(set(keys)) == 200
    for key in keys:
        assert key.startswith(KEY_PREFIX) and KEY_PREFIX == "cvk_"
        assert re.fullmatch(r"cvk_[A-Za-z0-9_-]{43}", key)  # 32 random bytes, base64url


def test_hash_api_key_is_the_deterministic_sha256_hex_of_the_key() -> None:
    key = "cvk_example"
    assert hash_api_key(key) == hash_api_key(key)
    assert hash_api_key(key) == hashlib.sha256(b"cvk_example").hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", hash_api_key(key))


def test_hash_api_key_differs_per_key() -> None:
    keys = [generate_api_key() for _ in range(50)]
    assert len({hash_api_key(k) for k in keys}) == 50
    assert hash_api_key("cvk_a") != hash_api_key("cvk_b")


# ---- content addressing -----------------------------------------------------------------------


def test_content_address_fans_out_by_the_first_two_byte_pairs() -> None:
    digest = hashlib.sha256(b"hello").hexdigest()
    assert digest.startswith("2cf24dba")
    assert content_address(digest) == f"sha256/2c/f2/{digest}"


def test_content_address_of_different_digests_differs() -> None:
    a = "ab" + "0" * 62
    b = "ab" + "0" * 61 + "1"
    assert content_address(a) == f"sha256/ab/00/{a}"
    assert content_address(a) != content_address(b)
