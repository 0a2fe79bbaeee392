"""Pluggable senders named in the environment: ``log`` or ``package.module:function``.

Login codes (``BASTION_OTP_SENDER``) and notifications (``BASTION_NOTIFY_SENDER``) are
sent by a function the deployment names; in development both write to the server log,
which production refuses. This is the one loader for both.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def is_log(spec: str) -> bool:
    """Whether `spec` names a development sender that only writes to the log."""
    return spec == "log" or spec.endswith(":log_sender")


def load(spec: str, *, setting: str, builtin: Callable[..., Any],
         error: type[Exception] = ValueError) -> Callable[..., Any]:
    """The function named by `spec`: ``log`` gives `builtin`, else ``module:function``.

    `setting` names the variable in error messages; `error` is the exception raised for a
    malformed or unknown name.
    """
    if spec == "log":
        return builtin
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise error(f"{setting}: expected 'log' or 'module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(f"{setting}: cannot import {module_name!r}: {exc}") from exc
    sender = getattr(module, attr, None)
    if not callable(sender):
        raise error(f"{setting}: {spec!r} is not a function")
    return sender
