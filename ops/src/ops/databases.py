"""A service's database as operators handle it: log in, count its outbox (and credits' parked
deductions), drop it and create it again empty, run its migrations.

Dropping and creating a database needs more than the service's everyday rights (its runtime
role has none of them). On the local cluster the superuser does it; elsewhere the service's
owner role may, when it owns the database and may create databases (the local owners can,
so tests can make scratch databases).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ops.local.errors import PlatformError
from ops.local.urls import redacted
from servicekit.urls import libpq_url

Connection = psycopg.Connection[tuple[object, ...]]
CONNECT_TIMEOUT = 5
MIGRATION_TIMEOUT = 300.0


def database_name(url: str) -> str:
    return str(conninfo_to_dict(libpq_url(url)).get("dbname") or "")


def role_name(url: str) -> str:
    return str(conninfo_to_dict(libpq_url(url)).get("user") or "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def connect(url: str, *, dbname: str | None = None) -> Connection:
    """A connection to `url` (to its server's `dbname` database instead, when given)."""
    conninfo = libpq_url(url)
    if dbname is not None:
        conninfo = make_conninfo(conninfo, dbname=dbname)
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT)


def check_login(service: str, url: str) -> None:
    """Raise a one-line `PlatformError` unless the service's database answers."""
    try:
        with connect(url) as connection:
            connection.execute("select 1")
    except psycopg.Error as error:
        raise PlatformError(
            f"the {service} database at {redacted(url)} does not answer ({_first_line(error)}): "
            "start it with `make up`, or fix its setting"
        ) from None


def outbox_backlog(url: str) -> int:
    """Events the service has recorded and not yet published."""
    with connect(url) as connection:
        row = connection.execute("select count(*) from outbox").fetchone()
    return int(str(row[0])) if row else 0


@dataclass(frozen=True, slots=True)
class Parked:
    deductions: int
    oldest_age_seconds: float


def parked_deductions(url: str) -> Parked:
    """Deductions the credits service waits to apply until their session's booking arrives,
    and how long the oldest has waited (by the database's clock)."""
    with connect(url) as connection:
        row = connection.execute(
            "select count(*), coalesce(extract(epoch from now() - min(received_at)), 0)"
            " from pending_deductions"
        ).fetchone()
    return Parked(int(str(row[0])), float(str(row[1]))) if row else Parked(0, 0.0)


@dataclass(frozen=True, slots=True)
class DatabaseAdmin:
    """Who drops and creates a service's database, and how it connects."""

    connect: Callable[[], Connection]
    #: Named in messages: "the local cluster's superuser", "role credits".
    description: str


def own_role(url: str) -> DatabaseAdmin:
    """The service's own role, through the server's maintenance database `postgres`."""
    return DatabaseAdmin(lambda: connect(url, dbname="postgres"), f"role {role_name(url)}")


def check_admin(admin: DatabaseAdmin, service: str, url: str) -> None:
    """Raise a one-line `PlatformError` unless `admin` can drop and create the service's
    database, owned by its role, and the role can log in to the server afterwards."""
    name, owner = database_name(url), role_name(url)
    try:
        with admin.connect() as connection:
            privileges = connection.execute(
                "select rolsuper, rolcreatedb from pg_roles where rolname = current_user"
            ).fetchone()
            owner_exists = connection.execute(
                "select 1 from pg_roles where rolname = %s", (owner,)
            ).fetchone()
            database_owner = connection.execute(
                "select pg_get_userbyid(datdba) from pg_database where datname = %s", (name,)
            ).fetchone()
            current = connection.execute("select current_user").fetchone()
    except psycopg.Error as error:
        raise PlatformError(
            f"the {service} database server does not answer {admin.description} "
            f"({_first_line(error)}): start it with `make up`, or fix its setting"
        ) from None
    superuser, may_create = privileges if privileges else (False, False)
    if owner_exists is None:
        raise PlatformError(f"role {owner} of the {service} database does not exist: run `make up`")
    if not superuser:
        me = str(current[0]) if current else ""
        if me != owner or not may_create:
            raise PlatformError(
                f"{admin.description} may not drop and create the {service} database "
                f"{name}: it needs to own it and have CREATEDB"
            )
        if database_owner is not None and str(database_owner[0]) != me:
            raise PlatformError(
                f"the {service} database {name} belongs to {database_owner[0]}, not to "
                f"{me}: ask its owner to rebuild it"
            )
    try:
        with connect(url, dbname="postgres") as connection:
            connection.execute("select 1")
    except psycopg.Error as error:
        raise PlatformError(
            f"the {service} role cannot log in at {redacted(url)} ({_first_line(error)}): "
            "fix its setting before rebuilding"
        ) from None


def recreate(admin: DatabaseAdmin, url: str) -> None:
    """Drop the database of `url` and create it again, empty, owned by the same role."""
    name, owner = database_name(url), role_name(url)
    try:
        _drop_and_create(admin, name, owner)
    except psycopg.Error as error:
        raise PlatformError(
            f"dropping and creating database {name} as {admin.description} failed "
            f"({_first_line(error)}); the service is stopped: fix the cause and rebuild again"
        ) from None


def drop_database(connection: psycopg.Connection[Any], name: str, *, attempts: int = 5) -> None:
    """Drop a database if it exists, on an autocommit connection to another one. A plain
    drop first: PostgreSQL itself stops an autovacuum worker busy there, which a forced drop
    would try to kill (and a role that is not superuser may not). Forced only when a session
    lingers (a connection pool closing, an operator's psql)."""
    drop = sql.SQL("drop database if exists {}").format(sql.Identifier(name))
    for _ in range(attempts):
        try:
            connection.execute(drop)
            return
        except psycopg.errors.ObjectInUse:
            time.sleep(0.5)
    connection.execute(drop + sql.SQL(" with (force)"))


def _drop_and_create(admin: DatabaseAdmin, name: str, owner: str) -> None:
    with admin.connect() as connection:
        drop_database(connection, name)
        connection.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(name), sql.Identifier(owner)
            )
        )


def migrate(alembic_ini: Path, url: str, *, service: str, runtime_role: str) -> None:
    """`alembic upgrade head` on the database of `url` (its owner's), giving `runtime_role`
    what the service needs; a failure is one line naming why."""
    alembic = [sys.executable, "-m", "alembic", "-c", str(alembic_ini)]
    arguments = ["-x", f"url={url}", "-x", f"runtime_role={runtime_role}"]
    command = [*alembic, *arguments, "upgrade", "head"]
    try:
        result = subprocess.run(
            command,
            cwd=alembic_ini.parent,
            capture_output=True,
            text=True,
            timeout=MIGRATION_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PlatformError(
            f"{service} migrations did not finish within {MIGRATION_TIMEOUT:g} s"
        ) from None
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise PlatformError(
            f"{service} migrations failed: {lines[-1] if lines else 'no output'}; the service is "
            "stopped with an empty database: fix the cause and rebuild again"
        )
