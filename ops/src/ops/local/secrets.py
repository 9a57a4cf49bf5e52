"""Passwords the local platform makes for itself: once, at random, kept in the git-ignored
`.local/secrets/` (readable by its owner alone) and reused across restarts: the database
roles' and the Kafka principals'.

The database roles' passwords are also written as a libpq password file (`pgpass`), which
the services, migrations and tools find through `PGPASSFILE`: database URLs then carry no
password, so none shows in a process list, an environment dump or `ops env`.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from contracts.principals import OPS, PRINCIPALS, SASL_MECHANISM
from contracts.services import (
    KAFKA_SASL_MECHANISM_ENV,
    KAFKA_SASL_PASSWORD_ENV,
    KAFKA_SASL_USERNAME_ENV,
    KAFKA_SECURITY_PROTOCOL_ENV,
    SERVICES,
    Service,
)
from ops.local.files import write_atomically
from ops.local.paths import Paths

PGPASSFILE_ENV = "PGPASSFILE"
PASSWORD_BYTES = 24


@dataclass(frozen=True, slots=True)
class RolePasswords:
    owner: str
    runtime: str


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def database_passwords(paths: Paths) -> dict[str, RolePasswords]:
    """Each service's roles' passwords, by service name; empty before `make up` made them."""
    if not paths.database_passwords.is_file():
        return {}
    stored = json.loads(paths.database_passwords.read_text())
    return {name: RolePasswords(**roles) for name, roles in stored.items()}


def ensure_database_passwords(
    paths: Paths, services: Iterable[Service] = SERVICES
) -> dict[str, RolePasswords]:
    """The passwords, made for any service that has none yet; the password file follows."""
    passwords = database_passwords(paths)
    missing = [s for s in services if s.name not in passwords]
    if missing or not paths.pgpass.is_file():
        passwords.update({s.name: RolePasswords(new_password(), new_password()) for s in missing})
        paths.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(paths.secrets_dir, 0o700)
        document = {name: asdict(roles) for name, roles in sorted(passwords.items())}
        write_atomically(paths.database_passwords, json.dumps(document).encode(), mode=0o600)
        write_atomically(paths.pgpass, _pgpass(passwords).encode(), mode=0o600)
    return passwords


def _pgpass(passwords: dict[str, RolePasswords]) -> str:
    """One line per role, for any host, port and database: the role names are the
    platform's own. (URL-safe passwords need no escaping.)"""
    lines = []
    for name, roles in sorted(passwords.items()):
        service = Service(name, port=0)  # the roles are named after the service alone
        lines.append(f"*:*:*:{service.owner_role}:{roles.owner}")
        lines.append(f"*:*:*:{service.runtime_role}:{roles.runtime}")
    return "\n".join(lines) + "\n"


def use_local_passwords(paths: Paths) -> None:
    """Let this process and its children find the local roles' passwords, unless the
    environment already names a password file."""
    if paths.pgpass.is_file():
        os.environ.setdefault(PGPASSFILE_ENV, str(paths.pgpass))


#: The broker's own controller listener authenticates this user (SASL PLAIN, its password in
#: the broker's configuration): the clients' principals are SCRAM ones, in the metadata.
CONTROLLER_USER = "controller"


@dataclass(frozen=True, slots=True)
class KafkaCredentials:
    """The local broker's principals' passwords (and its controller's)."""

    passwords: dict[str, str]

    def environment(self, principal: str) -> dict[str, str]:
        """The client settings of `principal`, as a process's environment carries them."""
        return {
            KAFKA_SECURITY_PROTOCOL_ENV: "SASL_PLAINTEXT",
            KAFKA_SASL_MECHANISM_ENV: SASL_MECHANISM,
            KAFKA_SASL_USERNAME_ENV: principal,
            KAFKA_SASL_PASSWORD_ENV: self.passwords[principal],
        }


def ensure_kafka_credentials(paths: Paths) -> KafkaCredentials:
    """The passwords, made for every principal of the contract that has none yet."""
    stored: dict[str, str] = (
        json.loads(paths.kafka_passwords.read_text()) if paths.kafka_passwords.is_file() else {}
    )
    names = [p.name for p in PRINCIPALS] + [CONTROLLER_USER]
    missing = [name for name in names if name not in stored]
    if missing:
        stored.update({name: new_password() for name in missing})
        paths.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(paths.secrets_dir, 0o700)
        write_atomically(
            paths.kafka_passwords, json.dumps(stored, sort_keys=True).encode(), mode=0o600
        )
    return KafkaCredentials(stored)


def use_local_kafka_principal(paths: Paths, principal: str = OPS.name) -> None:
    """Let this process (and what it starts) connect to the local broker as `principal`,
    unless the environment already says how to connect."""
    if KAFKA_SECURITY_PROTOCOL_ENV in os.environ:
        return
    for name, value in ensure_kafka_credentials(paths).environment(principal).items():
        os.environ.setdefault(name, value)
