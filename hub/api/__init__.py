"""The HTTP API (FastAPI), one router per resource. Routes call domain services, campaigns and
the dispatcher's helpers (audience counts, explain, provider statuses), and enqueue through
`hub.queue`; they never import workers.

Provider callbacks are served at the paths their adapter's reader names (`routes.inbound`).
May import every layer below the web and `hub.web`; not the console or the self-service pages.
"""
