"""The browser set-up itself: Debian's Chromium, driven by Playwright, loads the app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from web import create_app

pytest_plugins = ["tests.fixtures.browser"]


def test_chromium_renders_the_home_page_on_a_phone(browser: Any,
                                                   live_server: Callable[[Flask], str]) -> None:
    base = live_server(create_app({"TESTING": True, "SECRET_KEY": "test-secret"}))
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    response = page.goto(base + "/")
    assert response is not None and response.status == 200
    assert "Bastion" in page.title()
    assert response.headers["x-frame-options"] == "DENY"
    context.close()
