"""Every test's fixtures come from testkit's pytest plugin (`testkit.plugin`): real Kafka and
PostgreSQL (`testkit.servers` says how they are chosen), scratch databases and topics on
them, the suite's identity provider, and one service in-process.

The workspace's `contracts` and `ops` packages share their names with the folders that hold
them; importing them here first keeps pytest's importlib mode from standing in empty modules
for them when it names test modules after their paths.
"""

import contracts
import ops

__all__ = ["contracts", "ops"]

pytest_plugins = ["testkit.plugin"]
