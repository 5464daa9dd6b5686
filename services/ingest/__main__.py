"""``python -m services.ingest [serve|migrate]``"""

from services.ingest.app import MIGRATIONS, create_ingest_app
from services.ingest.models import SCHEMA
from services.ingest.settings import IngestSettings
from shared.process import run_service

run_service(
    IngestSettings(), create_ingest_app, "services.ingest.app:create_ingest_app", MIGRATIONS, SCHEMA
)
