"""`ops token`: one line, a token the services verify, for the role and user asked for; and
`ops dashboard-url`: the dashboard's address with such a token in its fragment."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from typer.testing import CliRunner

from contracts.identity import Role
from ops.cli import app
from ops.local.config import config_from_env
from ops.local.paths import Paths, repository_root
from servicekit.auth import Caller, KeySet, TokenVerifier, jwks_from_file

#: The local provider, whatever the suite's environment says.
LOCAL = {"AUTH_JWKS_FILE": "", "AUTH_JWKS_URL": "", "AUTH_ISSUER": "", "AUTH_AUDIENCE": ""}


def ops(command: str, *arguments: str, env: dict[str, str] = LOCAL) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [command, *arguments], env=env)
    return result.exit_code, result.stdout, result.stderr


def token(*arguments: str, env: dict[str, str] = LOCAL) -> tuple[int, str, str]:
    return ops("token", *arguments, env=env)


def dashboard_url(*arguments: str, env: dict[str, str] = LOCAL) -> tuple[int, str, str]:
    return ops("dashboard-url", *arguments, env=env)


async def verified(token: str) -> Caller:
    """Who the token says its bearer is, as the local platform's services verify it."""
    identity = config_from_env(LOCAL, Paths(repository_root())).identity
    assert identity.jwks_file is not None
    verifier = TokenVerifier(
        KeySet(jwks_from_file(identity.jwks_file)),
        issuer=identity.issuer,
        audience=identity.audience,
    )
    return await verifier.caller(token)


def lifetime(token: str) -> int:
    claims = jwt.decode(token, options={"verify_signature": False})
    return int(claims["exp"]) - int(claims["iat"])


@pytest.mark.parametrize(
    ("arguments", "subject", "role"),
    [
        (["--role", "client", "--user", "123"], "123", Role.CLIENT),
        (["--role", "trainer", "--user", "456"], "456", Role.TRAINER),
        (["--role", "staff"], "local-staff", Role.STAFF),
        (["--role", "service", "--user", "kiosk"], "kiosk", Role.SERVICE),
    ],
)
async def test_it_prints_one_line_a_token_the_services_accept(
    arguments: list[str], subject: str, role: Role
) -> None:
    code, out, _ = token(*arguments, "--ttl", "60")

    assert code == 0
    [line] = out.splitlines()
    caller = await verified(line)
    assert (caller.subject, caller.roles) == (subject, frozenset({role}))
    assert lifetime(line) == 60


@pytest.mark.parametrize("arguments", [["--role", "client"], ["--role", "trainer", "--user", "x"]])
def test_a_client_or_trainer_token_needs_their_user_id(arguments: list[str]) -> None:
    code, out, err = token(*arguments)

    assert code == 1
    assert out == ""
    assert err == f"error: a {arguments[1]} token needs --user with the {arguments[1]}'s user id\n"


def test_it_refuses_when_the_services_trust_another_provider() -> None:
    env = {**LOCAL, "AUTH_JWKS_URL": "https://id.example/jwks", "AUTH_ISSUER": "https://id"}
    code, out, err = token("--role", "staff", env=env)

    assert code == 1
    assert out == ""
    assert "not the local one" in err


# --- ops dashboard-url -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def demo_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where `ops demo` records its client, away from this checkout's own (none is there)."""
    record = tmp_path / "demo" / "client"
    monkeypatch.setattr(Paths, "demo_client", property(lambda _: record))
    return record


@pytest.mark.parametrize(
    ("arguments", "subject", "role"),
    [
        (["--role", "staff"], "local-staff", Role.STAFF),
        (["--role", "client", "--user", "123"], "123", Role.CLIENT),
        (["--role", "trainer", "--user", "456"], "456", Role.TRAINER),
    ],
)
async def test_the_dashboard_url_carries_a_fifteen_minute_token_in_its_fragment(
    arguments: list[str], subject: str, role: Role
) -> None:
    code, out, _ = dashboard_url(*arguments, env={**LOCAL, "ANALYTICS_HTTP_PORT": ""})

    assert code == 0
    [line] = out.splitlines()
    url = urlsplit(line)
    assert (url.scheme, url.netloc, url.path, url.query) == (
        "http",
        "127.0.0.1:8004",
        "/dashboard",
        "",
    )
    name, _, dashboard_token = url.fragment.partition("=")
    assert name == "token"
    caller = await verified(dashboard_token)
    assert (caller.subject, caller.roles) == (subject, frozenset({role}))
    assert lifetime(dashboard_token) == 15 * 60


def test_the_dashboard_url_takes_a_ttl_and_the_analytics_port_of_the_environment() -> None:
    code, out, _ = dashboard_url(
        "--role", "staff", "--ttl", "120", env={**LOCAL, "ANALYTICS_HTTP_PORT": "18004"}
    )

    assert code == 0
    assert out.startswith("http://127.0.0.1:18004/dashboard#token=")
    assert lifetime(out.strip().partition("#token=")[2]) == 120


def test_the_dashboard_url_may_name_the_client_it_opens_on() -> None:
    code, out, _ = dashboard_url("--role", "staff", "--client", "123")

    assert code == 0
    fragment = parse_qs(urlsplit(out.strip()).fragment)
    assert fragment["client"] == ["123"]
    assert len(fragment["token"]) == 1
    assert dashboard_url("--role", "staff", "--client", "0")[0] == 2


def test_after_the_demo_a_staff_link_opens_on_the_demo_client(demo_record: Path) -> None:
    demo_record.parent.mkdir(parents=True)
    demo_record.write_text("4711\n")

    code, out, err = dashboard_url("--role", "staff")

    assert code == 0
    [line] = out.splitlines()
    assert parse_qs(urlsplit(line).fragment)["client"] == ["4711"]
    assert "opens on client 4711" in err
    # --client still chooses; a trainer or a client is not sent to the demo's client.
    code, out, _ = dashboard_url("--role", "staff", "--client", "12")
    assert parse_qs(urlsplit(out.strip()).fragment)["client"] == ["12"]
    code, out, _ = dashboard_url("--role", "trainer", "--user", "456")
    assert "client" not in parse_qs(urlsplit(out.strip()).fragment)


def test_a_demo_record_that_is_not_a_user_id_is_ignored(demo_record: Path) -> None:
    demo_record.parent.mkdir(parents=True)
    demo_record.write_text("not an id")

    code, out, err = dashboard_url("--role", "staff")

    assert code == 0
    assert list(parse_qs(urlsplit(out.strip()).fragment)) == ["token"]
    assert err == ""


@pytest.mark.parametrize("ttl", ["0", str(24 * 3600 + 1)])
def test_the_dashboard_url_refuses_a_ttl_out_of_range(ttl: str) -> None:
    code, out, _ = dashboard_url("--role", "staff", "--ttl", ttl)

    assert code == 2
    assert out == ""


def test_a_dashboard_url_for_a_client_needs_their_user_id() -> None:
    code, out, err = dashboard_url("--role", "client")

    assert code == 1
    assert out == ""
    assert err == "error: a client token needs --user with the client's user id\n"


def test_no_dashboard_url_when_the_services_trust_another_provider() -> None:
    env = {**LOCAL, "AUTH_JWKS_URL": "https://id.example/jwks", "AUTH_ISSUER": "https://id"}
    code, out, err = dashboard_url("--role", "staff", env=env)

    assert code == 1
    assert out == ""
    assert "not the local one" in err
