"""Who is calling: bearer JWTs from the platform's identity provider, verified against its
JWKS, written once for every service (see docs/security.md).

`TokenVerifier` checks a token's signature with a key of the provider's key set, its
issuer, audience and times, and turns its claims into a `Caller`. `KeySet` keeps the key
set in memory: read when the service starts, read again when a token names a key it does
not hold (a rotation) and when it grows old, never per request. `authenticated` is the
FastAPI dependency every API route stands behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts.events import MAX_ID
from contracts.identity import ALGORITHMS, ROLES_CLAIM, USER_ROLES, Role

log = logging.getLogger(__name__)

#: Key types that can carry those algorithms; a symmetric (`oct`) key is never trusted.
KEY_TYPES = ("RSA", "EC", "OKP")
#: Tolerated clock difference with the identity provider when checking `exp`, `nbf`, `iat`.
LEEWAY_SECONDS = 30
#: Claims a token must carry.
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat")
#: A token naming an unknown key reads the key set again, at most this often: a stream of
#: tokens naming made-up keys must not become a stream of requests to the provider.
UNKNOWN_KEY_REFRESH_SECONDS = 5.0
#: The key set is read again (in the background) once this old, so that a key the provider
#: withdrew stops being trusted.
KEYS_MAX_AGE_SECONDS = 600.0
#: While no key set was ever read, a request tries again at most this often.
FIRST_LOAD_RETRY_SECONDS = 1.0
#: Tokens verified lately, by their text: an app sends the same token with every request
#: until it expires, and its signature is then checked once, not each time.
VERIFIED_TOKENS_KEPT = 4096
JWKS_FETCH_TIMEOUT = 5.0
#: Far above any real key set; refuses to hold an endless answer in memory.
JWKS_MAX_BYTES = 1_000_000

#: What a 401 says: what is missing, never which check of a signature failed.
REASON_INVALID = "the bearer token is not valid"
REASON_EXPIRED = "the bearer token has expired"
REASON_MISSING = "a bearer token is required (Authorization: Bearer <token>)"


_ROLE_NAMES = frozenset(role.value for role in Role)


@dataclass(frozen=True, slots=True)
class Caller:
    """Whoever a verified token speaks for."""

    subject: str
    roles: frozenset[Role]
    #: When the token expires (POSIX seconds), for what outlives a request: an event stream
    #: ends then. Not part of who the caller is.
    expires_at: float | None = field(default=None, compare=False)

    @property
    def is_staff(self) -> bool:
        return Role.STAFF in self.roles

    @property
    def sees_everything(self) -> bool:
        """Staff and other platform services read and act on every client's records."""
        return bool(self.roles & {Role.STAFF, Role.SERVICE})

    @property
    def user_id(self) -> int | None:
        """The caller's own user id, as a client or a trainer."""
        return int(self.subject) if self.roles & USER_ROLES else None

    @property
    def client_id(self) -> int | None:
        """The caller's user id when it acts as a client."""
        return int(self.subject) if Role.CLIENT in self.roles else None

    @property
    def trainer_id(self) -> int | None:
        """The caller's user id when it acts as a trainer."""
        return int(self.subject) if Role.TRAINER in self.roles else None

    def is_user(self, user_id: int) -> bool:
        """Whether `user_id` is the caller's own, as a client or a trainer."""
        return self.user_id == user_id

    def is_client(self, user_id: int) -> bool:
        """Whether the caller acts as the client `user_id`."""
        return self.client_id == user_id

    def is_trainer(self, trainer_id: int | None) -> bool:
        """Whether the caller acts as the trainer `trainer_id`."""
        return trainer_id is not None and self.trainer_id == trainer_id


class NotAuthenticated(Exception):
    """The token does not prove who is calling; the message says what is missing, never
    which check of a signature failed."""


class KeysUnavailable(Exception):
    """No key set could be read yet: nobody can be authenticated, through no fault of theirs."""


#: Reads the provider's key set document (a JWKS).
KeySource = Callable[[], Awaitable[bytes]]


def jwks_from_url(url: str) -> KeySource:
    # Imported here: only a service given an address pays for an HTTP client's memory.
    import httpx

    async def fetch() -> bytes:
        async with httpx.AsyncClient(timeout=JWKS_FETCH_TIMEOUT) as client:
            response = await client.get(url, headers={"accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > JWKS_MAX_BYTES:
                raise ValueError(f"the key set at {url} is larger than {JWKS_MAX_BYTES} bytes")
            return response.content

    return fetch


def jwks_from_file(path: Path) -> KeySource:
    async def read() -> bytes:
        return await asyncio.to_thread(path.read_bytes)

    return read


def parse_jwks(document: bytes) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS by key id. Keys that could never verify a token of ours
    (symmetric, for encryption, of another algorithm, without an id) are left out."""
    parsed = json.loads(document)
    listed = parsed.get("keys") if isinstance(parsed, dict) else None
    if not isinstance(listed, list):
        raise ValueError("not a JWKS: no list of keys")
    keys: dict[str, jwt.PyJWK] = {}
    for jwk in listed:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("kty") not in KEY_TYPES or jwk.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(jwk)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in ALGORITHMS:
            keys[jwk["kid"]] = key
    if not keys:
        raise ValueError(f"the key set holds no signing key for {', '.join(ALGORITHMS)}")
    return keys


class KeySet:
    """The provider's signing keys, cached. Reading them again keeps the last good set
    when the provider does not answer: tokens keep being verified meanwhile."""

    def __init__(self, source: KeySource, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] | None = None
        #: Changes whenever the keys do: what was verified with the old ones is checked again.
        self.version = 0
        self._read_at = 0.0
        self._last_attempt = -FIRST_LOAD_RETRY_SECONDS
        #: Counts reads, so that callers who waited for one in progress do not read again.
        self._reads = 0
        self._last_unknown_key_refresh = -UNKNOWN_KEY_REFRESH_SECONDS
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        return self._keys is not None

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key `kid` names, None when the provider does not publish it."""
        if self._keys is None:
            await self.ensure_loaded()
        assert self._keys is not None
        key = self._keys.get(kid)
        now = self._clock()
        if key is None and now - self._last_unknown_key_refresh >= UNKNOWN_KEY_REFRESH_SECONDS:
            self._last_unknown_key_refresh = now
            await self.refresh()
            key = self._keys.get(kid)
        return key

    def refresh_if_old(self) -> None:
        """Start reading the key set again, in the background, once it is old."""
        if (
            self._keys is not None
            and self._background is None
            and self._clock() - self._read_at >= KEYS_MAX_AGE_SECONDS
        ):
            self._background = asyncio.create_task(self._refresh_in_background())

    async def ensure_loaded(self) -> None:
        """Raises `KeysUnavailable` while no key set could be read (tried again at most
        once a second)."""
        if self._keys is not None:
            return
        if self._clock() - self._last_attempt >= FIRST_LOAD_RETRY_SECONDS:
            await self.refresh()
        if self._keys is None:
            raise KeysUnavailable("the identity provider's keys could not be read yet")

    async def refresh(self) -> None:
        """Read the key set again; on failure, keep the one held (the reason is logged)."""
        reads_before = self._reads
        async with self._lock:
            if self._reads != reads_before:
                return  # another caller read it while this one waited
            self._reads += 1
            self._last_attempt = self._clock()
            try:
                keys = parse_jwks(await self._source())
            except Exception as error:
                log.warning("reading the identity provider's keys failed: %s", _why(error))
                return
            if keys.keys() != (self._keys or {}).keys():
                self.version += 1
            self._keys = keys
            self._read_at = self._clock()

    async def keep_trying_until_loaded(self) -> None:
        """Read the key set at start-up, trying again with a backoff until it works."""
        backoff = FIRST_LOAD_RETRY_SECONDS
        while self._keys is None:
            await self.refresh()
            if self._keys is None:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _refresh_in_background(self) -> None:
        try:
            await self.refresh()
        finally:
            self._background = None


def _why(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


class TokenVerifier:
    def __init__(
        self, keys: KeySet, *, issuer: str, audience: str, roles_claim: str = ROLES_CLAIM
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self._roles_path = roles_claim.split(".")
        self._verified: dict[str, tuple[Caller, float]] = {}
        self._verified_with = keys.version

    async def caller(self, token: str) -> Caller:
        """The verified caller of `token`; `NotAuthenticated` for anything else."""
        self.keys.refresh_if_old()
        if self._verified_with != self.keys.version:
            self._verified.clear()
            self._verified_with = self.keys.version
        known = self._verified.get(token)
        if known is not None and time.time() < known[1] + LEEWAY_SECONDS:
            return known[0]
        caller, expires_at = await self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (caller, expires_at)
        return caller

    async def _verify(self, token: str) -> tuple[Caller, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotAuthenticated(REASON_INVALID) from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS or not isinstance(kid, str):
            raise NotAuthenticated(REASON_INVALID)
        key = await self.keys.key(kid)
        if key is None:
            raise NotAuthenticated(REASON_INVALID)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated(REASON_EXPIRED) from None
        except jwt.PyJWTError:
            raise NotAuthenticated(REASON_INVALID) from None
        expires_at = float(claims["exp"])
        return self._caller_of(claims, expires_at), expires_at

    def _caller_of(self, claims: Mapping[str, Any], expires_at: float) -> Caller:
        listed: Any = claims
        for name in self._roles_path:
            listed = listed.get(name) if isinstance(listed, Mapping) else None
        roles = frozenset(
            Role(name)
            for name in (listed if isinstance(listed, list) else [])
            if isinstance(name, str) and name in _ROLE_NAMES
        )
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise NotAuthenticated(REASON_INVALID)
        if roles & USER_ROLES and not _is_user_id(subject):
            raise NotAuthenticated("the bearer token's subject is not a user id")
        return Caller(subject=subject, roles=roles, expires_at=expires_at)


def _is_user_id(subject: str) -> bool:
    return subject.isascii() and subject.isdigit() and 0 < int(subject) <= MAX_ID


# --- FastAPI ---------------------------------------------------------------------------------

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A JWT access token from the platform's identity provider "
    "(locally: `uv run ops token --role staff`).",
)

#: What every API operation may answer besides its own responses (OpenAPI).
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or one that is not valid (expired, foreign, ...)"},
    403: {"description": "The caller's role may not do this"},
}


def _unauthorized(detail: str) -> HTTPException:
    # RFC 6750: a request without credentials gets a bare challenge, a bad token an error.
    challenge = "Bearer" if detail == REASON_MISSING else 'Bearer error="invalid_token"'
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge}
    )


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """The caller of this request: 401 without a valid token, 403 when it grants no role."""
    verifier: TokenVerifier = request.app.state.token_verifier
    if credentials is None:
        raise _unauthorized(REASON_MISSING)
    try:
        caller = await verifier.caller(credentials.credentials)
    except NotAuthenticated as refused:
        raise _unauthorized(str(refused)) from None
    except KeysUnavailable:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "callers cannot be verified yet: the identity provider's keys are not available",
            headers={"Retry-After": "5"},
        ) from None
    if not caller.roles:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the bearer token grants none of the roles " + ", ".join(Role),
        )
    return caller


CallerDep = Annotated[Caller, Depends(authenticated)]


def forbidden(detail: str) -> HTTPException:
    """A 403 saying what the caller's role may do instead."""
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)


#: Whether a trainer trains a client, as the answering service knows it:
#: `trains(trainer_id, user_id)`.
TrainsClient = Callable[[int, int], Awaitable[bool]]

CLIENT_RECORDS_RULE = (
    "a client reads only their own {what}, a trainer those of the clients they train"
)


async def require_client_records(
    caller: Caller, user_id: int, *, trains: TrainsClient, what: str
) -> None:
    """403 unless the caller may read client `user_id`'s records (`what` names them: a
    balance, usage): staff and services anyone's, a client their own, a trainer those of
    the clients they train."""
    if caller.sees_everything or caller.is_client(user_id):
        return
    if caller.trainer_id is not None and await trains(caller.trainer_id, user_id):
        return
    raise forbidden(CLIENT_RECORDS_RULE.format(what=what))
