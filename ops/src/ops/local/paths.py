"""Where the local platform keeps its files.

Inputs that are committed (the Kafka POM and log4j2 config, the services) are read from the
repository; everything the platform downloads or writes at run time goes under the
git-ignored `.local/`: jar cache, data directories, logs and pid files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ops.local.errors import PlatformError

_MARKER = Path("infra/kafka/pom.xml")


def repository_root(start: Path | None = None) -> Path:
    """The repository this tool belongs to.

    `ops` is installed editable from the workspace, so the repository is an ancestor of this
    file; starting from the file (not the working directory) lets `ops` run from anywhere.
    """
    here = (start or Path(__file__)).resolve()
    for candidate in (here, *here.parents):
        if (candidate / _MARKER).is_file():
            return candidate
    raise PlatformError(f"cannot find the repository root (no {_MARKER} above {here})")


@dataclass(frozen=True, slots=True)
class Paths:
    root: Path

    @property
    def local(self) -> Path:
        return self.root / ".local"

    # Kafka
    @property
    def kafka_pom(self) -> Path:
        return self.root / "infra" / "kafka" / "pom.xml"

    @property
    def log4j_config(self) -> Path:
        return self.root / "infra" / "kafka" / "log4j2.properties"

    @property
    def maven_repository(self) -> Path:
        return self.local / "m2"

    @property
    def kafka_dir(self) -> Path:
        return self.local / "kafka"

    @property
    def kafka_libs(self) -> Path:
        return self.kafka_dir / "libs"

    @property
    def kafka_libs_stamp(self) -> Path:
        return self.kafka_libs / ".complete"

    @property
    def kafka_data(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def kafka_secured_stamp(self) -> Path:
        """Written once the storage is formatted with the principals' credentials."""
        return self.kafka_dir / "secured"

    @property
    def kafka_properties(self) -> Path:
        return self.kafka_dir / "server.properties"

    # PostgreSQL
    @property
    def postgres_dir(self) -> Path:
        return self.local / "postgres"

    @property
    def postgres_data(self) -> Path:
        return self.postgres_dir / "data"

    @property
    def postgres_socket_dir(self) -> Path:
        return self.postgres_dir / "socket"

    # The local identity provider: its signing key and the key set the services trust
    @property
    def identity_dir(self) -> Path:
        return self.local / "identity"

    # Passwords the platform made for itself (readable by its owner alone)
    @property
    def secrets_dir(self) -> Path:
        return self.local / "secrets"

    @property
    def database_passwords(self) -> Path:
        return self.secrets_dir / "postgres.json"

    @property
    def kafka_passwords(self) -> Path:
        return self.secrets_dir / "kafka.json"

    @property
    def pgpass(self) -> Path:
        """libpq's password file for the database roles (`PGPASSFILE`)."""
        return self.secrets_dir / "pgpass"

    # What `ops demo` leaves for the commands after it
    @property
    def demo_client(self) -> Path:
        """The user id of the client of the demo's Example 1, whom a staff dashboard link
        opens on."""
        return self.local / "demo" / "client"

    # Logs and pid files
    @property
    def log_dir(self) -> Path:
        return self.local / "log"

    @property
    def run_dir(self) -> Path:
        return self.local / "run"

    @property
    def lock_file(self) -> Path:
        return self.run_dir / "ops.lock"

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    # Services
    def service_dir(self, name: str) -> Path:
        return self.root / "services" / name

    def alembic_ini(self, name: str) -> Path:
        return self.service_dir(name) / "alembic.ini"

    def service_main(self, name: str) -> Path:
        return self.service_dir(name) / "src" / name / "__main__.py"

    def ensure_runtime_dirs(self) -> None:
        for directory in (self.log_dir, self.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
