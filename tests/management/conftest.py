from __future__ import annotations

import socket

import pytest


@pytest.fixture
def unused_tcp_port_url() -> str:
    """A localhost URL on which nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
