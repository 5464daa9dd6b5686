"""``python -m services.dashboard [serve|migrate]``"""

from services.dashboard.app import MIGRATIONS, create_dashboard_app
from services.dashboard.models import SCHEMA
from services.dashboard.settings import DashboardSettings
from shared.process import run_service

run_service(
    DashboardSettings(),
    create_dashboard_app,
    "services.dashboard.app:create_dashboard_app",
    MIGRATIONS,
    SCHEMA,
)
