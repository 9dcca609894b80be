"""What the sync and async clients are built from: the base URL, the key, timeouts, the policy."""

from __future__ import annotations

from typing import Any

import httpx

from hub.client._retry import RetryPolicy

DEFAULT_TIMEOUT = 10.0
USER_AGENT = "hub-client/1"


def http_options(base_url: str, api_key: str, timeout: float | httpx.Timeout) -> dict[str, Any]:
    """The httpx client options both clients share."""
    if not api_key:
        raise ValueError("api_key is empty: create one with `hub apikey create NAME --scope S`")
    return {
        "base_url": base_url.rstrip("/"),
        "headers": {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        },
        "timeout": timeout,
        # Hub answers where it is asked; a redirect would carry the key somewhere else.
        "follow_redirects": False,
    }


def retry_policy(retries: int | RetryPolicy) -> RetryPolicy:
    """`retries=3` is shorthand for `RetryPolicy(retries=3)`; 0 turns retrying off."""
    if isinstance(retries, RetryPolicy):
        return retries
    if retries < 0:
        raise ValueError("retries must be 0 or more")
    return RetryPolicy(retries=retries)
