"""``python -m services.audit [serve|migrate]``"""

from services.audit.app import MIGRATIONS, create_audit_app
from services.audit.models import SCHEMA
from services.audit.settings import AuditSettings
from shared.process import run_service

run_service(
    AuditSettings(), create_audit_app, "services.audit.app:create_audit_app", MIGRATIONS, SCHEMA
)
