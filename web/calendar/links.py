"""The subscribe card of the volunteer page: feed links, QR code, reset.

`subscribe_card` gives everything the partial ``calendar/_subscribe_card.html`` shows. The
links start from ``BASTION_BASE_URL`` (the public address of the app), because a calendar
app fetches the feed from outside, not from the address the page was requested on.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import segno
from flask import current_app
from markupsafe import Markup
from sqlalchemy.orm import Session

from scheduler.calendars import services


@dataclass(frozen=True)
class SubscribeLinks:
    """The feed URL (https in production) and the same feed as a ``webcal://`` link,
    which phones and Outlook open as "subscribe to calendar"."""

    url: str
    webcal: str


@dataclass(frozen=True)
class SubscribeCard:
    links: SubscribeLinks
    qr_svg: Markup
    reset_url: str | None = None


def feed_path(token: str, kind: str = "volunteer") -> str:
    return f"/ical/site/{token}.ics" if kind == "site" else f"/ical/{token}.ics"


def subscribe_links(base_url: str, token: str, kind: str = "volunteer") -> SubscribeLinks:
    """The https and webcal URLs of a feed token under `base_url`."""
    parts = urlsplit(base_url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL must be http(s)://host[/prefix], got {base_url!r}")
    rest = f"{parts.netloc}{parts.path}{feed_path(token, kind)}"
    return SubscribeLinks(url=f"{parts.scheme}://{rest}", webcal=f"webcal://{rest}")


def qr_svg(url: str) -> Markup:
    """A QR code of `url` as inline SVG (scan with a phone camera to subscribe)."""
    svg = segno.make(url, error="m").svg_inline(scale=4, title="日历订阅二维码 Calendar QR code")
    return Markup(svg)


def subscribe_card(session: Session, volunteer_id: int, actor: str, *,
                   reset_url: str | None = None) -> SubscribeCard:
    """The card's content for a volunteer: their current link (issuing a first one if
    they have none; the caller commits), its webcal form and its QR code."""
    config = current_app.config
    token = services.volunteer_token(session, volunteer_id, actor, secret=config["SECRET_KEY"])
    links = subscribe_links(config["BASE_URL"], token)
    return SubscribeCard(links=links, qr_svg=qr_svg(links.url), reset_url=reset_url)


def reset_card(session: Session, volunteer_id: int, actor: str, *,
               reset_url: str | None = None) -> SubscribeCard:
    """"Reset my calendar link": revoke the old link (404 from now on) and show the new
    one. The caller commits."""
    services.reset_volunteer_token(session, volunteer_id, actor,
                                   secret=current_app.config["SECRET_KEY"])
    return subscribe_card(session, volunteer_id, actor, reset_url=reset_url)
