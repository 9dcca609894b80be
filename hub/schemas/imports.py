"""What a contact import reports back: counts, and each bad row with its line, field and reason."""

from __future__ import annotations

from pydantic import BaseModel, Field

MAX_REPORTED_ERRORS = 1000


class RowError(BaseModel):
    """One bad field of one row."""

    line: int = Field(description="1-based line of the file where the row starts.")
    field: str = Field(description="The column or key at fault; `row` when the row is unreadable.")
    reason: str = Field(description="What is wrong with it.")


class ImportReport(BaseModel):
    """What an import did."""

    rows: int = Field(description="Data rows read (blank lines are not rows).")
    created: int = Field(description="Rows that created a contact.")
    updated: int = Field(description="Rows that changed a contact.")
    unchanged: int = Field(description="Rows that named a contact and changed nothing.")
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
