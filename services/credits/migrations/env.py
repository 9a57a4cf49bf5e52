from credits.models import Base
from credits.settings import Settings
from servicekit.alembic_env import run_migrations

run_migrations(Settings, Base.metadata)
