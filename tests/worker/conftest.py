"""Fixtures for the worker tests: a real recording HTTP server on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.worker.http_recorder import RecordingServer


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    """A fresh recording server per test."""
    with RecordingServer() as srv:
        yield srv
