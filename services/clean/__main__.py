"""``python -m services.clean [serve|migrate]``"""

from services.clean.app import MIGRATIONS, create_clean_app
from services.clean.models import SCHEMA
from services.clean.settings import CleanSettings
from shared.process import run_service

run_service(
    CleanSettings(), create_clean_app, "services.clean.app:create_clean_app", MIGRATIONS, SCHEMA
)
