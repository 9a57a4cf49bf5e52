from servicekit.alembic_env import run_migrations
from workouts.models import Base
from workouts.settings import Settings

run_migrations(Settings, Base.metadata)
