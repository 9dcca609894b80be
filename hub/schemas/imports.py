"""What a contact import reports back: counts, and each bad row with its line, field and reason."""

from __future__ import annotations

from pydantic import BaseModel, Field

MAX_REPORTED_ERRORS = 1000


class RowError(BaseModel):
    line: int = Field(description="1-based line of the file where the row starts.")
    field: str = Field(description="The column or key at fault; `row` when the row is unreadable.")
    reason: str


class ImportReport(BaseModel):
    rows: int = Field(description="Data rows read (blank lines are not rows).")
    created: int
    updated: int
    unchanged: int
    failed: int = Field(
        description="Rows not imported, and with `subscribe_topic` also rows imported whose "
        "subscription was refused (their error names the field `subscription`); each has one "
        "or more entries in `errors`."
    )
    subscribed: int = Field(
        0, description="With `subscribe_topic`: rows whose person is now subscribed to it."
    )
    errors: list[RowError] = Field(
        description=f"One entry per bad field, in file order; at most {MAX_REPORTED_ERRORS}."
    )
    errors_truncated: bool = Field(description="Whether more errors were found than listed.")
