"""Pydantic shapes of what enters and leaves Hub, separate from the ORM models."""
