from analytics.models import Base
from analytics.settings import Settings
from servicekit.alembic_env import run_migrations

run_migrations(Settings, Base.metadata)
