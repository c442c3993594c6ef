"""Real races: many calls at once, one thread and one database connection each."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connections

from common.exceptions import ServiceError


def race(fn: Callable[..., Any], args_list: Sequence[tuple]) -> tuple[list[Any], list[ServiceError]]:
    """Run fn(*args) for every args at once (a barrier releases them together); return (results, refusals).

    Anything other than a ServiceError (a deadlock, an IntegrityError) propagates and fails the test.
    """
    barrier = threading.Barrier(len(args_list))

    def run(args: tuple) -> tuple[Any, ServiceError | None]:
        try:
            barrier.wait(timeout=30)
            return fn(*args), None
        except ServiceError as exc:
            return None, exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(args_list)) as pool:
        outcomes = list(pool.map(run, args_list))
    return [r for r, e in outcomes if e is None], [e for r, e in outcomes if e is not None]
