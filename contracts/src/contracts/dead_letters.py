"""The headers a consumer adds to a record it sends to the dead-letter topic (`<topic>.dlq`),
beside the record's own: why, where from, which consumer. Operators' tools read them back."""

from __future__ import annotations

from typing import Final

REASON: Final = "dlq-reason"
#: A short, stable name of the kind of reason (`invalid-payload`, `rejected`,
#: `session-id-taken`, …), for counting and selecting; absent on letters older than it.
REASON_KIND: Final = "dlq-reason-kind"
TOPIC: Final = "dlq-topic"
PARTITION: Final = "dlq-partition"
OFFSET: Final = "dlq-offset"
CONSUMER: Final = "dlq-consumer"
DLQ_HEADERS: Final = frozenset({REASON, REASON_KIND, TOPIC, PARTITION, OFFSET, CONSUMER})
