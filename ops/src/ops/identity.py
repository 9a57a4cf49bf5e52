"""The local identity provider: a signing key pair kept in the git-ignored `.local/identity/`,
its public half published as a JWKS file the services trust (`AUTH_JWKS_FILE`), and the
tokens `ops token` signs with it. Tests and benchmarks make one of their own.

The key is RSA (RS256), what most identity providers sign with by default. It is made once
and kept: a platform restarted with `make down`/`make up` keeps trusting the tokens it
issued. `rotate` adds a new key and keeps the old ones published, as a provider does, so
tokens signed before a rotation stay valid until they expire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts.events import MAX_ID
from contracts.identity import DEFAULT_AUDIENCE, USER_ROLES, Role
from ops.local.files import write_atomically

#: The issuer of the local provider's tokens (`AUTH_ISSUER` of the local platform).
LOCAL_ISSUER = "urn:training-platform:local-identity"
ALGORITHM = "RS256"
RSA_KEY_BITS = 2048
DEFAULT_TTL_SECONDS = 3600
#: The subject of a staff or service token when none is named.
DEFAULT_SUBJECT = {Role.STAFF: "local-staff", Role.SERVICE: "local-service"}

PRIVATE_KEY_FILE = "signing-key.pem"
JWKS_FILE = "jwks.json"


class IdentityError(ValueError):
    """A token that cannot be made as asked; the message says why."""


def subject_for(role: Role, user: str | None) -> str:
    """The `sub` of a token for `role`: a client's or trainer's user id, which they must
    have; any name for staff and services."""
    if role in USER_ROLES:
        if user is None or not user.isdigit() or not 0 < int(user) <= MAX_ID:
            raise IdentityError(f"a {role} token needs --user with the {role}'s user id")
        return str(int(user))
    if user is not None and not user.strip():
        raise IdentityError("--user must not be empty")
    return user or DEFAULT_SUBJECT[role]


@dataclass
class LocalIdentity:
    directory: Path
    issuer: str = LOCAL_ISSUER
    audience: str = DEFAULT_AUDIENCE
    _signing: tuple[str, rsa.RSAPrivateKey] | None = field(default=None, repr=False)

    @property
    def private_key_file(self) -> Path:
        return self.directory / PRIVATE_KEY_FILE

    @property
    def jwks_file(self) -> Path:
        return self.directory / JWKS_FILE

    @property
    def exists(self) -> bool:
        return self.private_key_file.is_file() and self.jwks_file.is_file()

    def ensure(self) -> bool:
        """Make the key pair unless it is there; True when it was made now."""
        if self.exists:
            return False
        self.rotate()
        return True

    def rotate(self) -> str:
        """Sign with a new key from now on, still publishing the earlier ones; returns its
        key id."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
        public = public_jwk(key.public_key())
        published = self._published_keys() if self.jwks_file.is_file() else []
        self.directory.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_atomically(self.private_key_file, pem, mode=0o600)
        document = {"keys": [public, *(k for k in published if k.get("kid") != public["kid"])]}
        write_atomically(self.jwks_file, json.dumps(document, indent=2).encode(), mode=0o644)
        self._signing = (public["kid"], key)
        return str(public["kid"])

    def token(
        self,
        role: Role,
        subject: str,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        issued_at: float | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token for `subject` in `role`; `claims` add to or replace the
        standard ones (tests use it to make tokens for another audience, say)."""
        now = time.time() if issued_at is None else issued_at
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": int(now),
            "exp": int(now + ttl),
            "jti": str(uuid.uuid4()),
            "roles": [str(role)],
            **claims,
        }
        kid, key = self._signing_key()
        return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": kid})

    def _signing_key(self) -> tuple[str, rsa.RSAPrivateKey]:
        if self._signing is None:
            if not self.exists:
                raise IdentityError(
                    f"no local identity provider in {self.directory}: `make up` makes one"
                )
            key = serialization.load_pem_private_key(
                self.private_key_file.read_bytes(), password=None
            )
            if not isinstance(key, rsa.RSAPrivateKey):
                raise IdentityError(f"{self.private_key_file} does not hold an RSA key")
            self._signing = (str(public_jwk(key.public_key())["kid"]), key)
        return self._signing

    def _published_keys(self) -> list[dict[str, Any]]:
        keys = json.loads(self.jwks_file.read_text()).get("keys", [])
        return [key for key in keys if isinstance(key, dict)]


def public_jwk(key: rsa.RSAPublicKey) -> dict[str, Any]:
    """The JWK of a public key, its id the RFC 7638 thumbprint (the same key, the same id)."""
    numbers = key.public_numbers()
    jwk = {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
