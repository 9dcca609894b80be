"""Import rows: read CSV or NDJSON records with their line numbers, then check them as the API does.

Reading (this process) and checking (`check_batch`, picklable, so worker processes can run it)
are kept apart: checking is most of an import's CPU time.

CSV: a header row names the columns: `external_id` (required), any of the contact fields,
`attributes` (a JSON object), `attr.<key>` columns (string values, merged over `attributes`),
`owner` (an employee's external id) and `teams` (team keys separated by `|` or `;`).
An empty cell means "not given": the field keeps its current value. To clear a field, send
NDJSON with `null`; to drop an attribute, `{"key": null}` in the `attributes` cell.
NDJSON: one JSON object per line, `external_id` plus contact fields; `null` clears a field
(`"teams": []` or `null`: in no team), `teams` is a list of keys.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from hub.fields import ExternalId
from hub.schemas.contacts import CARE_FIELDS, CONTACT_FIELDS, ContactIn
from hub.services.contacts import check_webhook_target
from hub.services.errors import InvalidField
from hub.services.imports.stream import StreamError, lines


class ImportFormat(enum.StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


MEDIA_TYPES = {
    "text/csv": ImportFormat.CSV,
    "application/x-ndjson": ImportFormat.NDJSON,
    "application/ndjson": ImportFormat.NDJSON,
    "application/jsonl": ImportFormat.NDJSON,
    "application/x-jsonlines": ImportFormat.NDJSON,
    "text/ndjson": ImportFormat.NDJSON,  # what `hub contacts import --format ndjson` passes
    "text/jsonl": ImportFormat.NDJSON,
}
SUFFIXES = {
    ".csv": ImportFormat.CSV,
    ".ndjson": ImportFormat.NDJSON,
    ".jsonl": ImportFormat.NDJSON,
    ".jsonlines": ImportFormat.NDJSON,
}
_HOW = "use CSV (text/csv, *.csv) or NDJSON (application/x-ndjson, *.ndjson, *.jsonl)"


def format_for(content_type: str | None, filename: str | None) -> ImportFormat:
    """The format named by a media type (which wins) or a file name. Raises ValueError."""
    if content_type:
        media_type, *params = (part.strip().lower() for part in content_type.split(";"))
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "charset" and value.strip().strip('"') not in {"utf-8", "utf8"}:
                raise ValueError(f"only UTF-8 text can be imported, not {value.strip()}")
        if media_type not in MEDIA_TYPES:
            raise ValueError(f"cannot import {media_type!r}: {_HOW}")
        return MEDIA_TYPES[media_type]
    suffix = "." + filename.rpartition(".")[2].lower() if filename and "." in filename else ""
    if suffix not in SUFFIXES:
        raise ValueError(f"cannot tell the format of {filename or 'the data'!r}: {_HOW}")
    return SUFFIXES[suffix]


@dataclass(frozen=True, slots=True)
class Columns:
    """A checked CSV header: where each value sits in a row."""

    count: int
    external_id: int
    fields: tuple[tuple[int, str], ...]
    attributes: int | None
    attrs: tuple[tuple[int, str], ...]  # attr.<key> columns


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A CSV record the csv module could not parse (a stray quote, an overlong field)."""

    reason: str


Payload = list[str] | str | Unreadable  # CSV cells, an NDJSON line, or a broken record
RawRow = tuple[int, Payload]  # (line where the record starts, payload)
# (line, external_id, the fields given, the owner and teams given)
GoodRow = tuple[int, str, dict[str, Any], dict[str, Any]]
Problem = tuple[int, str, str]  # (line, field, reason)

_KNOWN_KEYS = ("external_id", *CONTACT_FIELDS, "attributes", *CARE_FIELDS)
_COLUMN_FIELDS = (*CONTACT_FIELDS, *CARE_FIELDS)
_TEAM_SEPARATORS = re.compile(r"[|;]")
_KNOWN_COLUMNS = (*_KNOWN_KEYS, "attr.<key>")


def read_columns(header: list[str]) -> Columns:
    """Raises InvalidField("header") naming the first column that is not understood."""
    names = [cell.strip() for cell in header]
    fields, attrs = [], []
    attributes = None
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise InvalidField("header", f"column {name!r} appears twice")
        if name in _COLUMN_FIELDS:
            fields.append((index, name))
        elif name == "attributes":
            attributes = index
        elif name.startswith("attr.") and len(name) > len("attr."):
            attrs.append((index, name.removeprefix("attr.")))
        elif name != "external_id":
            hint = "; columns must be separated by commas" if ";" in name or "\t" in name else ""
            raise InvalidField(
                "header",
                f"unknown column {name!r} (column {index + 1}){hint}; "
                f"known columns: {', '.join(_KNOWN_COLUMNS)}",
            )
    if "external_id" not in names:
        raise InvalidField("header", "an external_id column is required")
    return Columns(len(names), names.index("external_id"), tuple(fields), attributes, tuple(attrs))


class CsvRows:
    """The records of a CSV text after its header. `failure` is set if the text broke off."""

    def __init__(self, text: io.TextIOBase) -> None:
        self._reader = csv.reader(lines(text), strict=True)
        self.failure: StreamError | None = None
        self._last_line = 0
        header = self._next_nonblank()
        if header is None and self.failure is not None:
            raise InvalidField("body", str(self.failure))
        if header is None:
            raise InvalidField("header", "the file is empty; its first line must name the columns")
        _, cells = header
        if isinstance(cells, Unreadable):
            raise InvalidField("header", f"cannot be read: {cells.reason}")
        self.columns = read_columns(cells)

    def __iter__(self) -> Iterator[RawRow]:
        while (row := self._next_nonblank()) is not None:
            yield row

    def _next_nonblank(self) -> tuple[int, list[str] | Unreadable] | None:
        while True:
            start = self._last_line + 1
            try:
                cells = next(self._reader)
            except StopIteration:
                return None
            except StreamError as exc:
                self.failure = exc
                return None
            except csv.Error as exc:
                self._last_line = self._reader.line_num
                return start, Unreadable(str(exc))
            self._last_line = self._reader.line_num
            if any(cell.strip() for cell in cells):
                return start, cells


class NdjsonRows:
    """The non-blank lines of an NDJSON text. `failure` is set if the text broke off."""

    def __init__(self, text: io.TextIOBase) -> None:
        self._lines = lines(text)
        self.failure: StreamError | None = None
        self.columns = None

    def __iter__(self) -> Iterator[RawRow]:
        number = 0
        try:
            for line in self._lines:
                number += 1
                if line.strip():
                    yield number, line
        except StreamError as exc:
            self.failure = exc


@dataclass(slots=True)
class Checked:
    """One batch after checking: rows to write, and the problems of the rest."""

    rows: int
    good: list[GoodRow]
    problems: list[Problem]
    failed: int


def check_batch(
    batch: list[RawRow], *, columns: Columns | None, allow_private_webhooks: bool
) -> Checked:
    """Validate raw rows with ContactIn, the API's own rules; CSV when `columns` is given."""
    good: list[GoodRow] = []
    problems: list[Problem] = []
    failed = 0
    for line, payload in batch:
        bad: dict[str, str] = {}
        row = None
        if isinstance(payload, Unreadable):
            bad["row"] = payload.reason
        else:
            if isinstance(payload, list):
                assert columns is not None
                external_id, data = _from_cells(payload, columns, bad)
            else:
                external_id, data = _from_json(payload, bad)
            if "row" not in bad:
                row = _contact(
                    external_id, data, bad, allow_private_webhooks=allow_private_webhooks
                )
        if row is not None:
            good.append((line, *row))
            continue
        failed += 1
        problems.extend((line, field, reason) for field, reason in bad.items())
    return Checked(len(batch), good, problems, failed)


def _from_cells(
    cells: list[str], columns: Columns, bad: dict[str, str]
) -> tuple[Any, dict[str, Any]]:
    size = len(cells)
    if size > columns.count:
        bad["row"] = f"has {size} cells but the header names {columns.count} columns"
        return None, {}
    data: dict[str, Any] = {
        name: cells[index]
        for index, name in columns.fields
        if index < size and cells[index].strip()
    }
    if "teams" in data:
        keys = [key.strip() for key in _TEAM_SEPARATORS.split(data["teams"])]
        data["teams"] = [key for key in keys if key]  # "north;" is one team, not two
        if not data["teams"]:
            del data["teams"]  # only separators: an empty cell
    attributes: dict[str, Any] = {}
    if columns.attributes is not None and columns.attributes < size:
        text = cells[columns.attributes].strip()
        if text:
            parsed = _json(text, bad, "attributes")
            if isinstance(parsed, dict):
                attributes.update(parsed)
            elif "attributes" not in bad:
                bad["attributes"] = 'must be a JSON object such as {"plan": "gold"}'
    for index, key in columns.attrs:
        if index < size and cells[index].strip():
            attributes[key] = cells[index]
    if attributes:
        data["attributes"] = attributes
    external_id = cells[columns.external_id] if columns.external_id < size else None
    return external_id, data


def _from_json(line: str, bad: dict[str, str]) -> tuple[Any, dict[str, Any]]:
    parsed = _json(line, bad, "row")
    if "row" in bad:
        return None, {}
    if not isinstance(parsed, dict):
        bad["row"] = "must be a JSON object with external_id and contact fields"
        return None, {}
    external_id = parsed.pop("external_id", None)
    return external_id, parsed


def _json(text: str, bad: dict[str, str], field: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        bad[field] = f"is not valid JSON ({exc.msg} at character {exc.pos + 1})"
    except (ValueError, RecursionError) as exc:
        bad[field] = f"is not acceptable JSON ({exc})"
    return None


_EXTERNAL_ID: TypeAdapter[str] = TypeAdapter(ExternalId)
# The API's path refuses every control character; an id it cannot address must not get in.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _contact(
    external_id: Any, data: dict[str, Any], bad: dict[str, str], *, allow_private_webhooks: bool
) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id)
    if external_id is None or (isinstance(external_id, str) and not external_id.strip()):
        bad["external_id"] = "is required"
    elif isinstance(external_id, str) and _CONTROL.search(external_id.strip()):
        bad["external_id"] = "must not contain control characters"
    else:
        try:
            external_id = _EXTERNAL_ID.validate_python(external_id)
        except ValidationError as exc:
            bad["external_id"] = _reason(exc.errors(include_url=False)[0])
    try:
        contact = ContactIn.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            bad.setdefault(str(error["loc"][0]) if error["loc"] else "row", _reason(error))
        return None
    given = contact.given()
    try:
        check_webhook_target(given.get("webhook_url"), allow_private=allow_private_webhooks)
    except InvalidField as exc:
        bad[exc.field] = exc.message.removeprefix(f"{exc.field}: ")
        return None
    return (external_id, given, contact.care()) if not bad else None


def _reason(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return f"is not a contact field; known fields: {', '.join(_KNOWN_KEYS)}"
    return error["msg"].removeprefix("Value error, ")
