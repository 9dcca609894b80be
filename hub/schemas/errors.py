"""The error envelope every non-2xx answer carries, as the OpenAPI description shows it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FieldProblem(BaseModel):
    """One problem with the input."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    field: str = Field(description="The field at fault: `name`, `channels[1]`, `body`, `cursor`")
    in_: str | None = Field(None, alias="in", description="body, query, path or header")
    message: str = Field(description="What is wrong with it, for people.")


class ErrorBody(BaseModel):
    """What went wrong."""

    code: str = Field(description="Stable, machine-readable: `invalid_request`, `not_found`, ...")
    message: str = Field(description="For people; names the field when one is at fault.")
    details: list[FieldProblem] | None = Field(
        description="For 422, one entry per problem; otherwise usually null."
    )


class ErrorOut(BaseModel):
    """The body of every answer that is not a success."""

    error: ErrorBody = Field(description="The error: its code, a message and the details.")
