"""`ops token`: one line, a token the services verify, for the role and user asked for."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from contracts.identity import Role
from ops.cli import app
from ops.local.config import config_from_env
from ops.local.paths import Paths, repository_root
from servicekit.auth import KeySet, TokenVerifier, jwks_from_file

#: The local provider, whatever the suite's environment says.
LOCAL = {"AUTH_JWKS_FILE": "", "AUTH_JWKS_URL": "", "AUTH_ISSUER": "", "AUTH_AUDIENCE": ""}


def token(*arguments: str, env: dict[str, str] = LOCAL) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["token", *arguments], env=env)
    return result.exit_code, result.stdout, result.stderr


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
    identity = config_from_env(LOCAL, Paths(repository_root())).identity
    assert identity.jwks_file is not None
    verifier = TokenVerifier(
        KeySet(jwks_from_file(identity.jwks_file)),
        issuer=identity.issuer,
        audience=identity.audience,
    )
    caller = await verifier.caller(line)
    assert (caller.subject, caller.roles) == (subject, frozenset({role}))


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
