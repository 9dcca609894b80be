"""Outbound event webhooks: timeline events relayed, signed, to other services' endpoints."""
