"""The test web server itself: what the browser tests rely on."""

from __future__ import annotations

import gc
import socket
import struct
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask

from web import create_app

pytest_plugins = ["tests.fixtures.browser"]


def test_a_connection_the_client_drops_leaves_no_static_file_open(
        live_server: Callable[[Flask], str]) -> None:
    # A browser drops the favicon's connection when the page navigates on.  An open file
    # left behind would fail this test (warnings are errors) when it is collected.
    url = urlsplit(live_server(create_app({"TESTING": True, "SECRET_KEY": "test-secret"})))
    for _ in range(30):
        sock = socket.create_connection((url.hostname, url.port))
        sock.sendall(b"GET /static/favicon.svg HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.01)
        # close with a reset, not a polite FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    time.sleep(0.5)
    gc.collect()
