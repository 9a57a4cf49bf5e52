"""Identity and access (HTTP) as the contract names them: the roles a token grants, the
claims it carries, the algorithms it may be signed with, and the settings that say which
identity provider the services trust."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    #: A client of the studio; the token's `sub` is their user id.
    CLIENT = "client"
    #: A trainer; `sub` is the trainer's user id.
    TRAINER = "trainer"
    #: Studio staff and admins.
    STAFF = "staff"
    #: Another platform service (client credentials); `sub` is its name.
    SERVICE = "service"


#: Roles whose `sub` is a user id (a decimal string).
USER_ROLES = frozenset({Role.CLIENT, Role.TRAINER})

#: The claim holding the roles, unless a service is told otherwise (`AUTH_ROLES_CLAIM`).
ROLES_CLAIM = "roles"
DEFAULT_AUDIENCE = "training-platform"
#: Asymmetric only: never `none`, never an HMAC algorithm keyed with a public key.
ALGORITHMS = ("RS256", "ES256", "EdDSA")

AUTH_ISSUER_ENV = "AUTH_ISSUER"
AUTH_AUDIENCE_ENV = "AUTH_AUDIENCE"
AUTH_JWKS_URL_ENV = "AUTH_JWKS_URL"
AUTH_JWKS_FILE_ENV = "AUTH_JWKS_FILE"
AUTH_ROLES_CLAIM_ENV = "AUTH_ROLES_CLAIM"
