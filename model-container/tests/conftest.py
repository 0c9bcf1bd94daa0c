"""Shared fixtures: one moto server per test session, its state reset before each test that uses it."""

from __future__ import annotations

import pytest

from ichal.testing.local_aws import MotoServer, start_moto_server


@pytest.fixture(scope="session")
def moto_server():
    server = start_moto_server()
    yield server
    server.stop()


@pytest.fixture
def local_aws(moto_server: MotoServer) -> MotoServer:
    """The session's moto server with empty state."""
    moto_server.reset()
    return moto_server
