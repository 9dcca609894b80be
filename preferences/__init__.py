"""Preferences: the pure resolver, the fold of preference events, the self-service page."""
