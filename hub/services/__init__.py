"""Domain services: the only code that changes rows. The API, CLI and workers call these."""
