"""The self-service pages people reach from every message: preferences, one-click
unsubscribe, "send me my link" and double opt-in. Server-rendered, no JavaScript needed."""
