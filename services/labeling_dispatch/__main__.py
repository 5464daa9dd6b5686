"""``python -m services.labeling_dispatch [serve|migrate]``"""

from services.labeling_dispatch.app import MIGRATIONS, create_labeling_app
from services.labeling_dispatch.models import SCHEMA
from services.labeling_dispatch.settings import LabelingSettings
from shared.process import run_service

run_service(
    LabelingSettings(),
    create_labeling_app,
    "services.labeling_dispatch.app:create_labeling_app",
    MIGRATIONS,
    SCHEMA,
)
