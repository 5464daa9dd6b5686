"""``python -m services.qc [serve|migrate]``"""

from services.qc.app import MIGRATIONS, create_qc_app
from services.qc.models import SCHEMA
from services.qc.settings import QcSettings
from shared.process import run_service

run_service(QcSettings(), create_qc_app, "services.qc.app:create_qc_app", MIGRATIONS, SCHEMA)
