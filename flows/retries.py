"""The one retry policy of the flows' database tasks.

Database I/O is retried twice with backoff (1 s, then 3 s), and only on the errors that say the
database could not be reached or refused (:class:`SourceUnavailable`, :class:`StoreError`): a bad
config or bad data is not retried, retrying cannot fix it. How long each attempt waits for its
database is ``MLMON_DB_TIMEOUT_S`` (:mod:`mlmon.tasks.connect`).
"""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE


def retried_on(*kinds: type[BaseException]) -> dict[str, Any]:
    """``@task`` options: two retries with backoff when the task raised one of ``kinds``, and no cache."""

    def condition(_task: Any, _run: Any, state: Any) -> bool:
        try:
            state.result()
        except kinds:
            return True
        except BaseException:
            return False
        return False

    return dict(retries=2, retry_delay_seconds=[1, 3], cache_policy=NO_CACHE, retry_condition_fn=condition)
