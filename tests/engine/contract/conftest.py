"""Fixtures of the venue contract suite: a ready venue of every kind in :data:`KINDS`.

The test-only constant-product venue (:mod:`cpmm_venue`) is registered for each test with
:func:`~perpsim.engine.registry.register_venue` and removed after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import cpmm_venue
import pytest
from venue_harness import KINDS, Harness

from perpsim.engine.registry import register_venue, unregister_venue


@pytest.fixture
def cpmm_registered() -> Iterator[str]:
    """The test-only venue, registered for one test."""
    register_venue(cpmm_venue.SPEC)
    try:
        yield cpmm_venue.KIND
    finally:
        unregister_venue(cpmm_venue.KIND)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest, cpmm_registered: str) -> str:
    """Each kind of the suite in turn (the test venue registered meanwhile)."""
    return str(request.param)


@pytest.fixture
def harness(kind: str) -> Harness:
    """A ready venue of ``kind``."""
    return Harness(kind)
