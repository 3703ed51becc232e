"""The whole server, in process: `create_app(fake_services)` behind Starlette's TestClient, with its lifespan
(so engine threads and log writers are stopped after each test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from cachepoint.api.app import create_app
from cachepoint.api.common import AppServices
from tests.api.wire import Boto


@pytest.fixture
def client(fake_services: AppServices) -> Iterator[TestClient]:
    with TestClient(create_app(fake_services)) as client:
        yield client


@pytest.fixture
def runtime(client: TestClient) -> Boto:
    """bedrock-runtime requests as boto3 shapes them, signed (in form) for us-east-1."""
    return Boto(client, "bedrock-runtime")


@pytest.fixture
def control(client: TestClient) -> Boto:
    """bedrock (control plane) requests as boto3 shapes them."""
    return Boto(client, "bedrock")
