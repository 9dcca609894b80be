"""Sandboxed Jinja2 rendering of per-channel, per-locale template parts.

It arrives with the dispatch issue; this package knows nothing of the web app or database.
"""
