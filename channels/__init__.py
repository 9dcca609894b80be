"""Delivery adapters (e-mail, SMS, voice, webhook, capture) behind one small interface
(`base`), found by name (`registry`); and what comes back from their providers, read into
Hub's words: Twilio's status callbacks, texts and keypresses (`twilio_callbacks`), bounce and
complaint reports (`email.reports`). Every vendor's words and formats live here.

The pure layer: imports only `hub.domain`, the standard library and the providers' own
libraries (aiosmtplib, twilio, aiohttp, httpx, pydantic-settings); never the web app, the
database or hub settings. Hub's import-linter contract checks it.
"""
