"""Checks around every test."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_clock_left_running() -> Iterator[None]:
    """A test must not leave the in-process clock running: its jobs would go on in later
    tests, on whatever database ``DATABASE_URL`` then names (or the instance file).

    An app made with ``TESTING: False`` starts it on its first request unless given
    ``CLOCK: False``; a test that wants it stops it (`web.stop_clock`).
    """
    yield
    jobs = sys.modules.get("scheduler.jobs")
    if jobs is not None and jobs.stop_local_clock():
        pytest.fail("the test left the in-process clock running (give its app CLOCK: False, "
                    "or stop the clock)")
