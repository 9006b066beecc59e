"""How long mlmon waits for a database, and its MongoDB client.

One setting for both databases: ``MLMON_DB_TIMEOUT_S``, the seconds to wait for MongoDB (server
selection, each connection) or PostgreSQL (``connect_timeout``) before the stage fails with a clear
error; the flow's database tasks then retry twice. Unset, MongoDB waits 3 s and PostgreSQL 5 s (libpq
waits at least 2 s per address tried). A value that is not a positive number of seconds is a
:class:`ConfigError` naming the variable, never a ``ValueError`` deep in a task.
"""

from __future__ import annotations

import math
import os
from typing import Any

from mlmon.tasks.errors import ConfigError

MONGO_TIMEOUT_S = 3.0  # unset: MongoDB's server selection and connection
POSTGRES_TIMEOUT_S = 5.0  # unset: PostgreSQL's connect_timeout


def db_timeout_s(default: float) -> float:
    """``MLMON_DB_TIMEOUT_S`` in seconds, or ``default`` when it is unset or empty."""
    raw = os.environ.get("MLMON_DB_TIMEOUT_S", "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"MLMON_DB_TIMEOUT_S={raw!r} is not a number of seconds above 0; set it to one "
            "(e.g. MLMON_DB_TIMEOUT_S=10) or unset it for the default"
        )
    return value


def mongo_client(uri: str) -> Any:
    """A ``pymongo.MongoClient`` for ``uri`` that fails fast (server selection and each connection wait
    at most :func:`db_timeout_s`) and returns timestamps as aware UTC datetimes. The caller closes it."""
    import pymongo

    ms = max(1, round(1000 * db_timeout_s(MONGO_TIMEOUT_S)))
    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, tz_aware=True)
