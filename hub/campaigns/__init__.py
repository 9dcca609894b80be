"""Campaigns: a message to a topic's audience or a segment of it, on a schedule."""
