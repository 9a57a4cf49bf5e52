"""The shape every service keeps: its rules and its handlers decide without any server.

Each module is imported in a fresh interpreter, so that nothing another test imported
hides what it pulls in; none of the libraries that talk to a database, a broker or a web
client may be among the modules it loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from contracts.services import SERVICES

#: What deciding never needs: a database driver or toolkit, a broker client, a web framework.
SERVER_LIBRARIES = ("sqlalchemy", "psycopg", "fastapi", "starlette", "faststream", "aiokafka")

PURE_MODULES = [
    "servicekit.domain",
    *(f"{service.name}.{part}" for service in SERVICES for part in ("rules", "handlers")),
]


def loaded_by(module: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after importing `module`."""
    program = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted({name.partition('.')[0] for name in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module", PURE_MODULES)
def test_deciding_loads_no_server_library(module: str) -> None:
    assert loaded_by(module).isdisjoint(SERVER_LIBRARIES)


def test_the_check_sees_a_server_library_when_one_is_loaded() -> None:
    assert "sqlalchemy" in loaded_by("servicekit.consumer")
