from booking.models import Base
from booking.settings import Settings
from servicekit.alembic_env import run_migrations

run_migrations(Settings, Base.metadata)
