"""The campaign pages' forms and words: a new campaign's form as the API's body, the data
typed into the edit form, and a campaign's segment and schedule in words."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from hub.console import forms, segment_words
from hub.schemas.campaigns import CampaignPatchIn
from hub.schemas.segments import is_flat
from hub.services.errors import InvalidField


def body(values: dict[str, str]) -> dict[str, Any]:
    segment: dict[str, Any] = {}
    if values.get("segment_kind"):
        segment["kind"] = values["segment_kind"]
    for field in ("locales", "timezones"):
        if listed := [
            v.strip() for v in values.get(f"segment_{field}", "").split(",") if v.strip()
        ]:
            segment[field] = listed
    pairs = [p.split("=", 1) for p in values.get("segment_attributes", "").split(",") if "=" in p]
    if pairs:
        segment["attributes"] = {k.strip(): v.strip() for k, v in pairs}
    kind = values.get("schedule_kind") or "now"
    schedule: dict[str, Any] = {"kind": kind}
    if kind == "at":
        schedule["at"] = values.get("schedule_at", "") + "Z"
    elif kind == "local":
        schedule["at"] = values.get("schedule_at", "")
    elif kind == "recurring":
        schedule |= {
            "cron": values.get("schedule_cron"),
            "timezone": values.get("schedule_timezone") or "UTC",
        }
    body: dict[str, Any] = {
        "name": values.get("name", ""),
        "topic": values.get("topic", ""),
        "template": values.get("template", ""),
        "data": forms.form_json(values.get("data") or "{}"),
        "segment": segment or None,
        "schedule": schedule,
    }
    if values.get("segment_key"):
        body["segment_key"] = values["segment_key"]
    if values.get("throttle_email"):
        body["throttle"] = {"email": int(values["throttle_email"])}
    if tracking := values.get("tracking"):
        body["tracking"] = tracking == "on"
    return body | _ab(values)


def _ab(values: dict[str, str]) -> dict[str, Any]:
    """The A/B rows: variants with a template chosen (the campaign's own template is then
    left out), and how they are sent. Numbers go as typed: the schema says what is wrong."""
    variants = [
        {
            "name": values.get(f"variant{i}_name") or letter,
            "template": values[f"variant{i}_template"],
        }
        | ({"share": values[f"variant{i}_share"]} if values.get(f"variant{i}_share") else {})
        for i, letter in enumerate("ABCD", start=1)
        if values.get(f"variant{i}_template")
    ]
    if not variants:
        return {}
    mode = values.get("ab_mode") or "split"
    ab: dict[str, Any] = {"mode": mode}
    if mode == "winner":  # the sample, wait and metric belong to a test-then-winner only
        ab |= {"metric": values.get("ab_metric") or "click"}
        for field, name in (("sample", "ab_sample"), ("wait_minutes", "ab_wait")):
            if values.get(name):
                ab[field] = values[name]
    return {"template": None, "variants": variants, "ab": ab}


_FIELDS = {
    "ab.sample": "The sample",
    "ab.wait_minutes": "The wait",
    "ab.mode": "How to send the variants",
    "ab": "The A/B test",
    "variants": "The variants",
}


def problems(exc: Exception, values: dict[str, str] | None = None) -> list[str]:
    """Why the new-campaign form was refused, in words: a variant's field is named by its
    row ("Variant B's share"), as the form labels it. The error counts the rows filled in;
    `values` (the form) says which row each of them was."""
    if isinstance(exc, ValidationError):
        found = [
            (_field_name(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()
        ]
    elif isinstance(exc, InvalidField):
        found = [(exc.field, exc.message.removeprefix(f"{exc.field}: "))]
    else:
        return forms.problems(exc)
    rows = _filled_rows(values or {})
    return [f"{_words(field, rows)}: {message}" for field, message in found]


def _filled_rows(values: dict[str, str]) -> list[str]:
    """The form's letter of each variant row with a template, in order."""
    return [
        letter for i, letter in enumerate("ABCD", start=1) if values.get(f"variant{i}_template")
    ]


def _field_name(location: tuple[Any, ...]) -> str:
    name = ""
    for part in location:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "form"


def _words(field: str, rows: list[str]) -> str:
    row = _VARIANT.fullmatch(field)
    if row:
        index = int(row["index"])
        letter = rows[index] if index < len(rows) else "ABCD"[index]
        return f"Variant {letter}'s {row['part'] or 'row'}"
    return _FIELDS.get(field, field)


_VARIANT = re.compile(r"variants\[(?P<index>[0-3])\]\.?(?P<part>\w*).*")


def describe_segment(segment: dict[str, Any] | None) -> str:
    """A segment in words, for the campaign page."""
    if not segment:
        return "the whole audience"
    if not is_flat(segment):  # a condition tree (a saved segment's copy)
        return segment_words.describe(segment)
    parts = []
    if kind := segment.get("kind"):
        parts.append(f"{kind}s")
    if locales := segment.get("locales"):
        parts.append("language " + " or ".join(locales))
    if zones := segment.get("timezones"):
        parts.append("in " + " or ".join(zones))
    parts += [f"{k} = {v}" for k, v in (segment.get("attributes") or {}).items()]
    return ", ".join(parts)


def tracking_default(topics: list[tuple[str, bool]]) -> str:
    """The form's hint: what "as the topic says" means for each topic offered."""
    tracked = [name for name, on in topics if on]
    untracked = [name for name, on in topics if not on]
    said = []
    if tracked:
        said.append(f"{_listed(tracked)} {'tracks' if len(tracked) == 1 else 'track'} them")
    if untracked:
        said.append(f"{_listed(untracked)} {'does' if len(untracked) == 1 else 'do'} not")
    return f"As the topic says: {'; '.join(said)}." if said else ""


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def describe_tracking(tracking: bool | None, topic: bool) -> str:
    """The campaign's tracking in words, for its page."""
    if tracking is None:
        said = "tracked" if topic else "not tracked"
        return f"as the topic says: opens and clicks {said}"
    return "opens and clicks tracked" if tracking else "not tracked"


def describe_schedule(schedule: dict[str, Any]) -> str:
    """A schedule in words, for the campaign page."""
    kind = schedule.get("kind")
    if kind == "at":
        return f"at {schedule['at'].replace('T', ' ').replace('Z', '')} UTC"
    if kind == "local":
        return f"at {schedule['at'].replace('T', ' ')} in each recipient's own time zone"
    if kind == "recurring":
        rule = f"cron {schedule['cron']}" if schedule.get("cron") else f"rule {schedule['rrule']}"
        until = f", until {schedule['until']}" if schedule.get("until") else ""
        return f"{rule}, in {schedule.get('timezone', 'UTC')}{until}"
    return "as soon as it is scheduled"


def data_body(typed: str) -> CampaignPatchIn:
    """The edit form's JSON as the API's PATCH body, checked alike.

    Raises:
        ValueError: not JSON, or nested too deeply to parse.
        ValidationError: not an object, or past the limits on data.
    """
    return CampaignPatchIn.model_validate({"data": forms.form_json(typed.strip() or "{}")})


def data_problems(exc: ValueError) -> list[str]:
    """Why typed data was refused, in words: where the JSON breaks, or what is wrong with it."""
    if isinstance(exc, json.JSONDecodeError):
        return [f"The data is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."]
    if isinstance(exc, ValidationError):
        return [f"The data: {e['msg'].removeprefix('Value error, ')}." for e in exc.errors()]
    return [f"The data is not JSON: {exc}."]


def pretty(data: dict[str, Any]) -> str:
    """The data as the page shows it and the form starts from."""
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
