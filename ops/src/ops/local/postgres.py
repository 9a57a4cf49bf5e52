"""A private PostgreSQL cluster in `.local/postgres`: per service one database and two roles,
its owner and the runtime role the service connects as, with random passwords.

Nothing depends on a system service being configured: the cluster has its own data
directory, port and socket directory, and `pg_ctl` starts and stops it. `initdb` and the
server refuse to run as root, so as root they run as the `postgres` user that Debian's
package creates, which then owns the cluster's directory.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from contracts.services import SERVICES, Service
from ops.local import apt, errors
from ops.local.config import (
    LOCAL_POSTGRES_PORT_ENV,
    DatabaseSettings,
    Plan,
    PlatformConfig,
    plan_server,
)
from ops.local.paths import Paths
from ops.local.processes import (
    ProcessSpec,
    describe_listener,
    is_alive,
    port_is_free,
    process_cmdline,
    read_pid,
    running_pid,
)
from ops.local.report import Say
from ops.local.secrets import RolePasswords, ensure_database_passwords
from ops.local.urls import redacted
from servicekit.urls import libpq_url

INSTALL_ROOT = Path("/usr/lib/postgresql")
OS_USER = "postgres"
SUPERUSER = "postgres"
SETTINGS_FILE = "platform.conf"
START_TIMEOUT = 90
STOP_TIMEOUT = 60
READY_TIMEOUT = 30.0
# The kernel limits a unix socket path to 108 bytes (sun_path), terminator included.
_SOCKET_PATH_LIMIT = 107


# --- binaries -----------------------------------------------------------------------------


def find_bin_dir(install_root: Path = INSTALL_ROOT, version: str | None = None) -> Path | None:
    """The server binaries of `version`, or of the newest installed major version."""
    found = {
        entry.name: entry / "bin"
        for entry in install_root.glob("*")
        if entry.name.isdigit() and (entry / "bin" / "pg_ctl").is_file()
    }
    if version is not None:
        return found.get(version)
    if not found:
        return None
    return found[max(found, key=int)]


def cluster_version(paths: Paths) -> str | None:
    """The major version that created our cluster; its binaries must run it."""
    try:
        return (paths.postgres_data / "PG_VERSION").read_text().strip()
    except (FileNotFoundError, PermissionError):
        return None


def _keep_package_from_creating_a_cluster() -> None:
    # Installing Debian's package creates (and may start) a system cluster "main" on 5432,
    # the port our own cluster wants. Its postinst skips that when createcluster.conf says
    # so; only write the file when the package is not configured yet, never over an admin's.
    conf = Path("/etc/postgresql-common/createcluster.conf")
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            "# Written by the training platform's `ops up` before installing PostgreSQL:\n"
            "# it runs its own cluster and does not want the package's default one.\n"
            "create_main_cluster = false\n"
        )


PACKAGES = ("postgresql",)


def install_commands() -> list[list[str]]:
    return apt.install_commands(PACKAGES)


def install_postgresql(paths: Paths, say: Say) -> None:
    apt.refuse_unless_root("the PostgreSQL server", PACKAGES)
    say("PostgreSQL: installing the server (apt-get install postgresql), once")
    _keep_package_from_creating_a_cluster()
    # Keep our createcluster.conf if the package offers its own.
    apt.install(PACKAGES, paths, {"UCF_FORCE_CONFFOLD": "1"})


def ensure_binaries(paths: Paths, say: Say) -> Path:
    version = cluster_version(paths)
    bin_dir = find_bin_dir(version=version)
    if bin_dir is None and version is None:
        install_postgresql(paths, say)
        bin_dir = find_bin_dir()
    if bin_dir is not None:
        return bin_dir
    if version is not None:
        raise errors.PlatformError(
            f"the cluster in {paths.postgres_data} was created by PostgreSQL {version}, "
            f"which is not installed: apt-get install postgresql-{version}"
        )
    raise errors.PlatformError(f"no PostgreSQL server binaries under {INSTALL_ROOT}")


# --- running as the postgres user -----------------------------------------------------------


def _running_as_root() -> bool:
    return os.geteuid() == 0


def as_cluster_owner(command: Sequence[str]) -> list[str]:
    """The command as the user that owns the cluster: `postgres` when we are root."""
    if _running_as_root():
        return ["runuser", "-u", OS_USER, "--", *command]
    return list(command)


def _owner_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(OS_USER)
    except KeyError:
        raise errors.PlatformError(
            f"the {OS_USER!r} OS user is missing: install PostgreSQL: apt-get install postgresql"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _give_to_owner(path: Path) -> None:
    if _running_as_root():
        uid, gid = _owner_ids()
        os.chown(path, uid, gid)


def ensure_traversable(target: Path, say: Say) -> None:
    """Let the postgres user reach `target`: add search (o+x, not read) where it lacks it.

    Only matters as root, when the repository lives under a private directory (/root).
    """
    if not _running_as_root():
        return
    uid, gid = _owner_ids()
    for directory in reversed(target.resolve().parents):
        info = directory.stat()
        reachable = (
            info.st_mode & stat.S_IXOTH
            or (info.st_uid == uid and info.st_mode & stat.S_IXUSR)
            or (info.st_gid == gid and info.st_mode & stat.S_IXGRP)
        )
        if not reachable:
            directory.chmod(info.st_mode | stat.S_IXOTH)
            say(f"PostgreSQL: allowed other users to pass through {directory} (o+x)")


def prepare_directories(paths: Paths, say: Say) -> None:
    socket_path = paths.postgres_socket_dir / ".s.PGSQL.65535"
    if len(str(socket_path)) > _SOCKET_PATH_LIMIT:
        raise errors.PlatformError(
            f"the repository path is too long for PostgreSQL's socket ({socket_path}): "
            "clone it to a shorter path"
        )
    paths.ensure_runtime_dirs()
    for directory in (paths.postgres_dir, paths.postgres_socket_dir):
        directory.mkdir(parents=True, exist_ok=True)
        # Only the cluster owner (and root) may enter: local socket logins are trusted.
        directory.chmod(0o700)
        _give_to_owner(directory)
    log = paths.log("postgres")
    log.touch(exist_ok=True)
    _give_to_owner(log)
    ensure_traversable(paths.postgres_dir, say)


def _run_as_owner(command: Sequence[str], paths: Paths, step: str, timeout: float) -> None:
    log = paths.log("postgres")
    with log.open("ab") as output:
        try:
            result = subprocess.run(
                as_cluster_owner(command),
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=paths.postgres_dir,
                timeout=timeout,
                check=False,
                # Its own session, so the operator's Ctrl-C on `ops` does not reach the server.
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            raise errors.step_timed_out(step, timeout, log) from None
    if result.returncode != 0:
        raise errors.step_failed(step, log)


# --- cluster ------------------------------------------------------------------------------


def is_initialised(paths: Paths) -> bool:
    return (paths.postgres_data / "PG_VERSION").is_file()


def initialise(bin_dir: Path, paths: Paths, say: Say) -> None:
    say("PostgreSQL: creating the cluster (once)")
    initdb = [str(bin_dir / "initdb"), "-D", str(paths.postgres_data), "-U", SUPERUSER]
    command = [
        *initdb,
        # Local socket logins are trusted: the socket's directory is the owner's alone.
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
    ]
    _run_as_owner(command, paths, "PostgreSQL initdb", START_TIMEOUT)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


#: The buffer cache of the platform's cluster (PostgreSQL's own default is 128MB).
SHARED_BUFFERS = "1GB"
#: The write-ahead log between checkpoints (PostgreSQL's own default is 1GB).
MAX_WAL_SIZE = "8GB"


def render_settings(*, port: int, socket_dir: Path) -> str:
    """Settings of our cluster, loaded from postgresql.conf via an include."""
    settings = {
        "listen_addresses": _quote("127.0.0.1"),
        "port": str(port),
        "unix_socket_directories": _quote(str(socket_dir)),
        "password_encryption": _quote("scram-sha-256"),
        # Four services with connection pools, their tests and the operator's psql.
        "max_connections": "200",
        # The services' hot indexes (processed_events, the ledger's primary key) outgrow
        # 128MB with a few million events of history; every insert then misses the cache
        # (docs/benchmarks.md, "cost curve"). docker-compose.yml sets the same.
        "shared_buffers": _quote(SHARED_BUFFERS),
        # With 1GB the platform under load reached a checkpoint every 10 to 50 s, and after
        # each the first change of every page writes the whole page to the log again: on a
        # big random-keyed index, nearly every insert. 8GB leaves checkpoints to their
        # 5-minute timeout (docs/benchmarks.md, "Checkpoints by time"); docker-compose.yml
        # sets the same.
        "max_wal_size": _quote(MAX_WAL_SIZE),
        # stderr goes to .local/log/postgres.log through pg_ctl -l.
        "logging_collector": "off",
        "log_line_prefix": _quote("%m [%p] %q%u@%d "),
    }
    lines = ["# Written by `ops up` (ops/src/ops/local/postgres.py); edits are overwritten."]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def write_settings(paths: Paths, port: int) -> None:
    settings = paths.postgres_data / SETTINGS_FILE
    settings.write_text(render_settings(port=port, socket_dir=paths.postgres_socket_dir))
    _give_to_owner(settings)
    main_conf = paths.postgres_data / "postgresql.conf"
    include = f"include = '{SETTINGS_FILE}'"
    if include not in main_conf.read_text().splitlines():
        with main_conf.open("a") as conf:
            conf.write(f"\n# The training platform's settings (ops up)\n{include}\n")


def process_spec(paths: Paths) -> ProcessSpec:
    # The postmaster writes its own pid file; its command line names our data directory.
    return ProcessSpec(
        name="postgres",
        pid_file=paths.postgres_data / "postmaster.pid",
        signature=("-D", str(paths.postgres_data)),
    )


def remove_stale_pid_file(paths: Paths) -> None:
    """Drop a postmaster.pid left by a crash, whose pid may now belong to another program
    (the server would then refuse to start) — but never that of a live PostgreSQL server,
    which a second postmaster on the same data directory would corrupt."""
    pid_file = paths.postgres_data / "postmaster.pid"
    pid = read_pid(pid_file)
    if pid is not None and is_alive(pid):
        command = process_cmdline(pid) or []
        if any(Path(part).name in ("postgres", "postmaster") for part in command[:1]):
            raise errors.PlatformError(
                f"a PostgreSQL server (pid {pid}) that this tool did not start runs on "
                f"{paths.postgres_data}: stop it with pg_ctl -D {paths.postgres_data} stop"
            )
    pid_file.unlink(missing_ok=True)


def start(bin_dir: Path, paths: Paths) -> None:
    remove_stale_pid_file(paths)
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(paths.postgres_data)]
    command = [*pg_ctl, "-l", str(paths.log("postgres")), "-w", "-t", str(START_TIMEOUT), "start"]
    _run_as_owner(command, paths, "PostgreSQL start (pg_ctl)", START_TIMEOUT + 10)


def stop_postgres(paths: Paths, *, immediate: bool = False) -> int | None:
    """`pg_ctl stop -m fast`: sessions are cut, data is flushed. None when not ours/running.
    `immediate`: as if the machine lost power (no checkpoint; the next start recovers from
    the write-ahead log), for the fault-injection runs."""
    pid = running_pid(process_spec(paths))
    if pid is None:
        return None
    bin_dir = find_bin_dir(version=cluster_version(paths)) or find_bin_dir()
    if bin_dir is None:
        raise errors.PlatformError("cannot stop PostgreSQL: its pg_ctl is not installed")
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(paths.postgres_data)]
    mode = "immediate" if immediate else "fast"
    command = [*pg_ctl, "-m", mode, "-w", "-t", str(STOP_TIMEOUT), "stop"]
    _run_as_owner(command, paths, "PostgreSQL stop (pg_ctl)", STOP_TIMEOUT + 10)
    return pid


# --- connections, roles and databases ----------------------------------------------------


def superuser_connection(paths: Paths, port: int) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=str(paths.postgres_socket_dir),
        port=port,
        user=SUPERUSER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=3,
    )


def wait_until_ready(paths: Paths, port: int) -> None:
    """Ready means a real connection runs `select 1`."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            with superuser_connection(paths, port) as connection:
                connection.execute("select 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise errors.step_timed_out(
                    "PostgreSQL readiness (select 1)", READY_TIMEOUT, paths.log("postgres")
                ) from None
            time.sleep(0.3)


def _exists(connection: psycopg.Connection[tuple[object, ...]], query: str, name: str) -> bool:
    return connection.execute(query, (name,)).fetchone() is not None


def ensure_service_database(
    connection: psycopg.Connection[tuple[object, ...]],
    service: Service,
    passwords: RolePasswords,
) -> bool:
    """The service's two roles, with these passwords, and its database, which only they can
    connect to; True when a role or the database was created.

    The owner role owns the database and runs migrations and rebuilds; it may create
    databases (the tests make scratch databases with it). The runtime role is what the
    service connects as: no CREATEDB, no DDL (its privileges on the tables come with the
    migrations, `servicekit.migrations.grant_runtime_privileges`).
    """
    created = False
    for role, password, rights in (
        (service.owner_role, passwords.owner, "login createdb nocreaterole"),
        (service.runtime_role, passwords.runtime, "login nocreatedb nocreaterole"),
    ):
        exists = _exists(connection, "select 1 from pg_roles where rolname = %s", role)
        verb = "alter" if exists else "create"
        connection.execute(
            sql.SQL(f"{verb} role {{}} {rights} password {{}}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        created = created or not exists
    database = sql.Identifier(service.database)
    if not _exists(connection, "select 1 from pg_database where datname = %s", service.database):
        # CREATE DATABASE cannot run in a transaction: the connection is in autocommit.
        connection.execute(
            sql.SQL("create database {} owner {}").format(
                database, sql.Identifier(service.owner_role)
            )
        )
        created = True
    connection.execute(
        sql.SQL("revoke connect, temporary on database {} from public").format(database)
    )
    connection.execute(
        sql.SQL("grant connect on database {} to {}").format(
            database, sql.Identifier(service.runtime_role)
        )
    )
    return created


def create_service_roles(
    admin_url: str,
    passwords: dict[str, RolePasswords],
    services: Sequence[Service] = SERVICES,
) -> list[str]:
    """Each service's roles and database on a server we administer but did not start (a
    testcontainer); returns the names of those created."""
    with psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=10) as connection:
        return [
            s.database
            for s in services
            if ensure_service_database(connection, s, passwords[s.name])
        ]


def check_login(database: DatabaseSettings, passfile: Path) -> None:
    """Both roles log in, each with its own URL (a local one with its password from
    `passfile`)."""
    for url in (database.url, database.owner_url):
        conninfo = libpq_url(url)
        if database.is_local_address:
            conninfo = make_conninfo(conninfo, passfile=str(passfile))
        try:
            with psycopg.connect(conninfo, connect_timeout=5) as connection:
                connection.execute("select 1")
        except psycopg.Error as error:
            text = str(error).strip()
            reason = text.splitlines()[0] if text else type(error).__name__
            raise errors.PlatformError(
                f"cannot log in to the {database.service.name} database at "
                f"{redacted(url)}: {reason}"
            ) from None


# --- up -----------------------------------------------------------------------------------


def _start_ours(config: PlatformConfig, say: Say) -> None:
    paths = config.paths
    bin_dir = ensure_binaries(paths, say)
    prepare_directories(paths, say)
    if not is_initialised(paths):
        initialise(bin_dir, paths, say)
    write_settings(paths, config.postgres_port)
    start(bin_dir, paths)
    say(f"PostgreSQL: started (pid {running_pid(process_spec(paths))})")


def _create_databases(config: PlatformConfig, say: Say) -> None:
    passwords = ensure_database_passwords(config.paths, [d.service for d in config.local_databases])
    with superuser_connection(config.paths, config.postgres_port) as connection:
        for database in config.local_databases:
            service = database.service
            if ensure_service_database(connection, service, passwords[service.name]):
                say(
                    f"PostgreSQL: set up roles {service.owner_role!r} and "
                    f"{service.runtime_role!r}, and database {service.database!r}"
                )


def ensure_postgres(config: PlatformConfig, say: Say) -> None:
    """Our cluster up with each local service database in it; then every database logs in."""
    if config.local_databases:
        port = config.postgres_port
        spec = process_spec(config.paths)
        plan = plan_server(
            local_address=True,
            named_in_env=config.postgres_named_in_env,
            ours_running=running_pid(spec) is not None,
            ports_free=port_is_free(port),
        )
        if plan is Plan.PORT_TAKEN:
            raise errors.port_taken(
                port,
                "PostgreSQL",
                describe_listener(port),
                f"stop that process, or set {LOCAL_POSTGRES_PORT_ENV} to a free port",
            )
        if plan is Plan.USE_EXTERNAL:
            say(f"PostgreSQL: using the server already on port {port}, named in the settings")
        else:
            if plan is Plan.REUSE_OURS:
                say(f"PostgreSQL: already running (pid {running_pid(spec)})")
            else:
                _start_ours(config, say)
            wait_until_ready(config.paths, port)
            _create_databases(config, say)
    # External databases are assumed to exist; a failed login says which one and why.
    for database in config.databases:
        check_login(database, config.paths.pgpass)
