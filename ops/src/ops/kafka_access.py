"""The brokers' ACLs as the contract's table of principals says (`contracts.principals`):
what each principal may write, read and consume as, behind a topic prefix (the platform's
own topics have none; an isolated copy in the tests has its own).

The broker denies what no ACL allows (`allow.everyone.if.no.acl.found=false`); the `ops`
principal is a super user there and needs none. aiokafka speaks the ACL requests but has no
client call for them, so the requests are sent as its admin client sends its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request

from contracts.principals import PRINCIPALS, Principal
from contracts.topics import DEAD_LETTER_SUFFIX
from ops import groups
from ops.local.errors import PlatformError


class ResourceType(IntEnum):
    ANY = 1
    TOPIC = 2
    GROUP = 3


class PatternType(IntEnum):
    ANY = 1
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    ANY = 1
    READ = 3
    WRITE = 4
    DESCRIBE = 8


class Permission(IntEnum):
    ANY = 1
    ALLOW = 3


ANY_HOST = "*"
#: How often, and how patiently, `grant` looks for its bindings on the broker (about 5 s).
GRANT_CHECKS = 10
GRANT_CHECK_INTERVAL = 0.1


@dataclass(frozen=True, slots=True)
class Acl:
    """One ALLOW binding: `principal` may do `operation` on the resource."""

    resource_type: ResourceType
    name: str
    pattern: PatternType
    principal: str
    operation: Operation

    def wire(self) -> tuple[int, str, int, str, str, int, int]:
        return (
            self.resource_type,
            self.name,
            self.pattern,
            f"User:{self.principal}",
            ANY_HOST,
            self.operation,
            Permission.ALLOW,
        )


def acls_of(principal: Principal, prefix: str = "") -> Iterator[Acl]:
    """Exactly what the contract's table gives `principal`, behind `prefix`. Writing and
    reading a topic imply describing it; a service also writes the `.dlq` twin of each topic
    it reads, and uses the consumer groups named after it."""

    def on_topic(name: str, operation: Operation) -> Acl:
        return Acl(
            ResourceType.TOPIC, prefix + name, PatternType.LITERAL, principal.name, operation
        )

    for topic in principal.writes:
        yield on_topic(topic.name, Operation.WRITE)
    for topic in principal.reads:
        yield on_topic(topic.name, Operation.READ)
        if principal.dead_letters:
            yield on_topic(topic.name + DEAD_LETTER_SUFFIX, Operation.WRITE)
    if principal.groups is not None:
        groups = prefix + principal.groups
        yield Acl(ResourceType.GROUP, groups, PatternType.PREFIXED, principal.name, Operation.READ)


def platform_acls(prefix: str = "") -> list[Acl]:
    """Every principal's, behind `prefix`."""
    return [acl for principal in PRINCIPALS for acl in acls_of(principal, prefix)]


class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]  # aiokafka: untyped
    API_KEY = 30

    def __init__(self, acls: Sequence[Acl]) -> None:
        self.acls = acls

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class([acl.wire() for acl in self.acls])


class _DeleteAcls(Request[DeleteAclsRequest_v1]):  # type: ignore[misc]  # aiokafka: untyped
    API_KEY = 31

    def __init__(self, acls: Sequence[Acl]) -> None:
        self.acls = acls

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class([acl.wire() for acl in self.acls])


class _DescribeAcls(Request[DescribeAclsRequest_v1]):  # type: ignore[misc]  # aiokafka: untyped
    API_KEY = 29

    def __init__(self, principal: str) -> None:
        self.principal = principal

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        return request_struct_class(
            ResourceType.ANY,
            None,
            PatternType.ANY,
            f"User:{self.principal}",
            None,
            Operation.ANY,
            Permission.ANY,
        )


async def grant(bootstrap: str, acls: Sequence[Acl]) -> None:
    """Create the bindings (those already there stay as they are), as `ops`, and return
    once the broker enforces them: the controller accepts a binding before the broker
    applies it, and a client let in a moment too early would be refused."""
    async with groups.kafka_admin(bootstrap) as admin:
        response = await _send(admin, _CreateAcls(acls))
        failures = [message or str(code) for code, message in response.creation_responses if code]
        if failures:
            raise PlatformError(f"the broker refused ACLs: {failures[0]}")
        for attempt in range(GRANT_CHECKS):
            held = {
                acl
                for principal in {acl.principal for acl in acls}
                for acl in await _held_by(admin, principal)
            }
            if held >= set(acls):
                return
            await asyncio.sleep(GRANT_CHECK_INTERVAL * (attempt + 1))
    raise PlatformError("the broker accepted the ACLs but does not enforce them yet")


async def revoke(bootstrap: str, acls: Sequence[Acl]) -> None:
    async with groups.kafka_admin(bootstrap) as admin:
        await _send(admin, _DeleteAcls(acls))


async def acls_held_by(bootstrap: str, principal: str) -> set[Acl]:
    """The ALLOW bindings the broker holds for `principal`."""
    async with groups.kafka_admin(bootstrap) as admin:
        return await _held_by(admin, principal)


async def _held_by(admin: AIOKafkaAdminClient, principal: str) -> set[Acl]:
    response = await _send(admin, _DescribeAcls(principal))
    if response.error_code:
        raise PlatformError(f"the broker refused to list ACLs: {response.error_message}")
    return {
        Acl(ResourceType(kind), name, PatternType(pattern), principal, Operation(operation))
        for kind, name, pattern, entries in response.resources
        for holder, _host, operation, permission in entries
        if holder == f"User:{principal}" and permission == Permission.ALLOW
    }


async def _send(admin: AIOKafkaAdminClient, request: Any) -> Any:
    # aiokafka's admin client sends its own requests this way; ACLs have no call of theirs.
    return await admin._send_request(request)
