"""Masking of connection strings and passwords in anything we print."""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"(?P<scheme>postgres(?:ql)?://)(?P<user>[^:@/\s]*):(?P<pw>[^@\s]*)@")
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)(?P<pw>[^&\s]+)", re.IGNORECASE)

MASK = "****"


def mask_dsn(text: str) -> str:
    """Hide passwords in URLs (``user:pw@``), key=value DSNs and ``?password=`` queries."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _KV_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)


def mask_secrets(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """``mask_dsn`` plus every known secret value wherever it appears (e.g. in server messages)."""
    text = mask_dsn(text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text
