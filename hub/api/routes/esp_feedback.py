"""Bounces and complaints that a provider Hub relays through reports by webhook: Amazon SES
(through SNS) and SendGrid's event webhook, each signature-checked (issue 20, item 4)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/inbound/email", tags=["inbound"])
