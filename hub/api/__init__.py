"""The HTTP API (FastAPI): routes call domain services and never touch workers directly."""
