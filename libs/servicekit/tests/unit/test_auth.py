"""Token verification and the cached key set, without a network or a service: keys come from
a source in memory and time from a clock the test moves."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from contracts.identity import Role
from ops.identity import LocalIdentity
from servicekit.auth import (
    KEYS_MAX_AGE_SECONDS,
    UNKNOWN_KEY_REFRESH_SECONDS,
    Caller,
    KeySet,
    KeysUnavailable,
    NotAuthenticated,
    TokenVerifier,
    parse_jwks,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A key set document that the test changes, counting how often it is read."""

    def __init__(self, document: bytes) -> None:
        self.document: bytes | Exception = document
        self.reads = 0

    async def __call__(self) -> bytes:
        self.reads += 1
        if isinstance(self.document, Exception):
            raise self.document
        return self.document


@pytest.fixture
def provider(tmp_path: Path) -> LocalIdentity:
    identity = LocalIdentity(tmp_path / "idp")
    identity.ensure()
    return identity


def jwks(provider: LocalIdentity) -> bytes:
    return provider.jwks_file.read_bytes()


def verifier(
    source: Source, clock: Clock, provider: LocalIdentity, **options: Any
) -> TokenVerifier:
    return TokenVerifier(
        KeySet(source, clock=clock), issuer=provider.issuer, audience=provider.audience, **options
    )


def test_a_key_set_keeps_only_keys_that_can_sign_our_tokens(provider: LocalIdentity) -> None:
    [signing] = json.loads(jwks(provider))["keys"]
    keys = [
        signing,
        {"kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0"},
        {**signing, "kid": "for-encryption", "use": "enc"},
        {key: value for key, value in signing.items() if key != "kid"},
        {**signing, "kid": "rs512", "alg": "RS512"},
        "not a key",
    ]

    parsed = parse_jwks(json.dumps({"keys": keys}).encode())

    assert list(parsed) == [signing["kid"]]


@pytest.mark.parametrize("document", [b"{}", b"[]", b'{"keys": [{"kty": "oct", "kid": "x"}]}'])
def test_a_document_without_signing_keys_is_no_key_set(document: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_jwks(document)


async def test_a_verified_token_names_its_caller_and_roles(provider: LocalIdentity) -> None:
    check = verifier(Source(jwks(provider)), Clock(), provider)

    caller = await check.caller(provider.token(Role.TRAINER, "42", roles=["trainer", "client"]))

    assert caller == Caller("42", frozenset({Role.TRAINER, Role.CLIENT}))
    assert (caller.user_id, caller.client_id, caller.trainer_id) == (42, 42, 42)
    assert caller.is_trainer(42)
    assert caller.is_client(42)
    assert not caller.sees_everything


async def test_a_caller_carries_when_its_token_expires(provider: LocalIdentity) -> None:
    """What outlives a request (an event stream) ends then."""
    check = verifier(Source(jwks(provider)), Clock(), provider)
    issued_at = int(time.time())
    token = provider.token(Role.CLIENT, "7", issued_at=issued_at, ttl=600)

    caller = await check.caller(token)

    assert caller.expires_at == issued_at + 600
    assert caller == Caller("7", frozenset({Role.CLIENT})), "who calls, whenever it expires"


async def test_roles_may_live_in_a_nested_claim(provider: LocalIdentity) -> None:
    """As Keycloak puts them (`realm_access.roles`); unknown roles are ignored."""
    check = verifier(Source(jwks(provider)), Clock(), provider, roles_claim="realm_access.roles")
    token = provider.token(
        Role.STAFF, "ana", roles=None, realm_access={"roles": ["offline_access", "staff"]}
    )

    caller = await check.caller(token)

    assert caller.roles == {Role.STAFF}
    assert caller.is_staff
    assert caller.sees_everything
    assert caller.user_id is None


async def test_a_client_whose_subject_is_not_a_user_id_is_not_authenticated(
    provider: LocalIdentity,
) -> None:
    check = verifier(Source(jwks(provider)), Clock(), provider)

    with pytest.raises(NotAuthenticated, match="not a user id"):
        await check.caller(provider.token(Role.CLIENT, "alice"))


async def test_a_token_without_a_key_id_is_not_valid(provider: LocalIdentity) -> None:
    import jwt

    check = verifier(Source(jwks(provider)), Clock(), provider)
    token = provider.token(Role.STAFF, "ana")
    claims = jwt.decode(token, options={"verify_signature": False})
    key = serialization.load_pem_private_key(provider.private_key_file.read_bytes(), None)

    with pytest.raises(NotAuthenticated, match="not valid"):
        await check.caller(jwt.encode(claims, key, algorithm="RS256"))  # type: ignore[arg-type]


async def test_a_token_is_verified_once_then_remembered_until_the_keys_change(
    provider: LocalIdentity,
) -> None:
    source, clock = Source(jwks(provider)), Clock()
    check = verifier(source, clock, provider)
    token = provider.token(Role.STAFF, "ana")
    await check.caller(token)
    reads = source.reads

    # Withdrawn from the key set: remembered no more once the set is read again.
    other = LocalIdentity(provider.directory.parent / "other")
    other.ensure()
    source.document = jwks(other)
    assert await check.caller(token) == Caller("ana", frozenset({Role.STAFF}))
    assert source.reads == reads
    clock.now += KEYS_MAX_AGE_SECONDS
    await check.keys.refresh()

    with pytest.raises(NotAuthenticated):
        await check.caller(token)


async def test_an_unknown_key_reads_the_set_again_at_most_once_per_interval(
    provider: LocalIdentity,
) -> None:
    source, clock = Source(jwks(provider)), Clock()
    check = verifier(source, clock, provider)
    await check.caller(provider.token(Role.STAFF, "ana"))
    assert source.reads == 1

    provider.rotate()
    source.document = jwks(provider)
    rotated = provider.token(Role.STAFF, "ana")
    assert (await check.caller(rotated)).subject == "ana"
    assert source.reads == 2

    # Tokens naming made-up keys: one read per interval, however many arrive.
    stranger = LocalIdentity(provider.directory.parent / "stranger")
    stranger.ensure()
    for _ in range(5):
        with pytest.raises(NotAuthenticated):
            await check.caller(stranger.token(Role.STAFF, "mallory"))
    assert source.reads == 2
    clock.now += UNKNOWN_KEY_REFRESH_SECONDS
    with pytest.raises(NotAuthenticated):
        await check.caller(stranger.token(Role.STAFF, "mallory"))
    assert source.reads == 3


async def test_keys_that_cannot_be_read_again_are_kept(provider: LocalIdentity) -> None:
    source, clock = Source(jwks(provider)), Clock()
    check = verifier(source, clock, provider)
    await check.keys.refresh()

    source.document = ConnectionError("identity provider down")
    clock.now += KEYS_MAX_AGE_SECONDS
    await check.keys.refresh()

    assert (await check.caller(provider.token(Role.STAFF, "ana"))).subject == "ana"


async def test_without_any_key_set_nobody_can_be_verified_and_it_says_so(
    provider: LocalIdentity,
) -> None:
    source, clock = Source(b""), Clock()
    source.document = ConnectionError("identity provider down")
    check = verifier(source, clock, provider)

    with pytest.raises(KeysUnavailable):
        await check.caller(provider.token(Role.STAFF, "ana"))
    with pytest.raises(KeysUnavailable):
        await check.keys.ensure_loaded()
    assert source.reads == 1, "tried again at most once a second"

    source.document = jwks(provider)
    clock.now += 1
    assert (await check.caller(provider.token(Role.STAFF, "ana"))).subject == "ana"
