"""Console pages for saved segments: the list, the editor that builds a condition tree with
plain forms (add a condition or a group, remove one) and shows who matches as it changes,
and deletion. The tree is checked by the API's own schema and saved by its service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import select

from hub.console import forms, segment_words
from hub.console import segment_form as editor
from hub.console.auth import NotAllowed, SessionsDep, Staff, StaffDep
from hub.console.pages import back_to, page
from hub.db.models import Segment, Topic
from hub.dispatch import audience
from hub.domain import Channel, ContactKind, StaffRole
from hub.fields import TOPIC_KEY, check_key
from hub.schemas.segments import Condition, Conditions, SavedSegmentIn
from hub.services import account_mail, segments
from hub.services.errors import InvalidField, NotFound
from hub.web.deps import RuntimeDep
from hub.web.forms import first
from hub.web.static import SCRIPTED_CSP

router = APIRouter(prefix="/console", include_in_schema=False)
KeyPath = Annotated[str, Path(pattern=TOPIC_KEY)]
SAMPLE = 10
TREE: TypeAdapter[Condition] = TypeAdapter(Conditions)
CHANNELS = (
    ("", "Any channel"),
    (Channel.EMAIL.value, "E-mail"),
    (Channel.SMS.value, "SMS"),
    (Channel.VOICE.value, "Voice call"),
    (Channel.WEBHOOK.value, "Webhook"),
)
KINDS = ((ContactKind.CLIENT.value, "Client"), (ContactKind.EMPLOYEE.value, "Employee"))
# What pydantic says, in plain words, by its error type.
WORDS = {
    "float_parsing": "Enter a number, like 100 or 2.5",
    "finite_number": "Enter a number, like 100 or 2.5",
    "date_parsing": "Enter a date as YYYY-MM-DD, like 2025-03-31",
    "date_from_datetime_parsing": "Enter a date as YYYY-MM-DD, like 2025-03-31",
    "date_from_datetime_inexact": "Enter a date as YYYY-MM-DD, like 2025-03-31",
    "enum": "Choose one from the list",
    "too_long": "Enter at most 100 values",
}


@dataclass
class Counted:
    count: int
    sample: list[tuple[str, str | None]]
    topic: Topic | None


@router.get("/segments")
def segment_list(
    request: Request,
    staff: StaffDep,
    runtime: RuntimeDep,
    deleted: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    with runtime.reads() as session:
        rows = [(s, _words(s.conditions)) for s in segments.by_name(session)]
    notice = f"Segment {deleted} deleted." if deleted else None
    return page(
        request, "segments.html", "Segments", staff, section="segments", rows=rows, notice=notice
    )


@router.get("/segments/new")
def segment_new(request: Request, staff: StaffDep, runtime: RuntimeDep) -> Response:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)
    shown = {"key": "", "name": "", "description": "", "topic": ""}
    return _editor(request, staff, runtime, None, shown=shown, root=editor.empty())


@router.post("/segments/new")
async def segment_new_post(
    request: Request, staff: StaffDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    return await _posted(request, staff, sessions, runtime, None)


@router.post("/segments/count")
async def segment_count(
    request: Request, staff: StaffDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    """The audience part of the editor alone, for its script to put in place."""
    form = await forms.posted(request, staff, sessions, StaffRole.VIEWER)
    values = {name: first(form, name) for name in form}
    invalid: dict[str, str] = {}
    root = editor.read(values)
    with runtime.reads() as session:
        tree = _checked(session, root, invalid)
        counted = None if invalid else _count(session, tree, values.get("topic", ""), invalid)
    return page(
        request,
        "segment_audience.html",
        "Audience",
        staff,
        counted=counted,
        count_error=_first_problem(invalid, root),
    )


@router.get("/segments/{key}/edit")
def segment_edit(
    key: KeyPath,
    request: Request,
    staff: StaffDep,
    runtime: RuntimeDep,
    saved: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    with runtime.reads() as session:
        found = _find(session, key)
    if found is None:
        return _missing(request, staff, key)
    shown = {"key": key, "name": found.name, "description": found.description or "", "topic": ""}
    notice = {"created": "Segment saved.", "updated": "Changes saved."}.get(saved)
    root = editor.load(found.conditions)
    return _editor(request, staff, runtime, found, shown=shown, root=root, notice=notice)


@router.post("/segments/{key}/edit")
async def segment_edit_post(
    key: KeyPath, request: Request, staff: StaffDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    with runtime.reads() as session:
        found = _find(session, key)
    if found is None:
        return _missing(request, staff, key)
    return await _posted(request, staff, sessions, runtime, found)


@router.get("/segments/{key}/delete")
def segment_delete_page(
    key: KeyPath, request: Request, staff: StaffDep, runtime: RuntimeDep
) -> Response:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)
    with runtime.reads() as session:
        found = _find(session, key)
    if found is None:
        return _missing(request, staff, key)
    return page(
        request,
        "segment_delete.html",
        f"Delete the segment {found.name}?",
        staff,
        section="segments",
        segment=found,
        words=_words(found.conditions),
    )


@router.post("/segments/{key}/delete")
async def segment_delete(
    key: KeyPath, request: Request, staff: StaffDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    await forms.posted(request, staff, sessions, StaffRole.MARKETER)
    try:
        with runtime.sessions() as session:
            segments.delete(session, key, forms.staff_actor(request, staff))
            session.commit()
    except NotFound:
        return _missing(request, staff, key)
    return back_to(f"/console/segments?deleted={quote(key)}")


async def _posted(
    request: Request, staff: Staff, sessions: Any, runtime: Any, found: Segment | None
) -> Response:
    """Every button of the editor posts the whole form: count, add, remove, or save."""
    action_role = StaffRole.VIEWER if found is not None else StaffRole.MARKETER
    form = await forms.posted(request, staff, sessions, action_role)
    values = {name: first(form, name) for name in form}
    shown = {
        "key": found.key if found else values.get("key", "").strip(),
        "name": values.get("name", "").strip(),
        "description": values.get("description", "").strip(),
        "topic": values.get("topic", ""),
    }
    root = editor.read(values)
    action, _, path = values.get("action", "count").partition(":")
    if action == "save":
        if not staff.may(StaffRole.MARKETER):
            raise NotAllowed(StaffRole.MARKETER)
        return _save(request, staff, runtime, found, shown=shown, root=root)
    focus = None
    if action in ("add", "group"):
        focus = editor.add(root, path, values.get(f"{path}.{action}", ""))
    elif action == "remove":
        root.remove(path)
        root.numbered()
    # Only "Count" asks for the form to be checked: a condition just added is not wrong yet.
    return _editor(
        request, staff, runtime, found, shown=shown, root=root, focus=focus, check=action == "count"
    )


def _save(
    request: Request,
    staff: Staff,
    runtime: Any,
    found: Segment | None,
    *,
    shown: dict[str, str],
    root: editor.Node,
) -> Response:
    invalid: dict[str, str] = {}
    key = shown["key"]
    if found is None:
        try:
            check_key(key)
        except ValueError as exc:
            invalid["key"] = f"The key {exc}" if key else "Enter a key"
    if not shown["name"]:
        invalid["name"] = "Enter a name"
    built = editor.build(root)
    if built.tree is None and not built.problems:
        invalid[f"{editor.ROOT}-add"] = "Add at least one condition"
    with runtime.sessions() as session:
        tree = _checked(session, root, invalid)
        if found is None and "key" not in invalid and _find(session, key) is not None:
            invalid["key"] = "A segment with this key exists already: choose another key"
        if tree is not None and not invalid:
            try:
                body = SavedSegmentIn(
                    name=shown["name"], description=shown["description"] or None, conditions=tree
                )
            except ValidationError as exc:
                for field, message in forms.field_errors(exc).items():
                    invalid[field] = message[:1].upper() + message[1:]
            else:
                segments.put(session, key, body, forms.staff_actor(request, staff))
                session.commit()
                saved = "created" if found is None else "updated"
                return back_to(f"/console/segments/{key}/edit?saved={saved}")
    return _editor(request, staff, runtime, found, shown=shown, root=root, invalid=invalid)


def _checked(session: Any, root: editor.Node, invalid: dict[str, str]) -> Condition | None:
    """The form's tree, checked by the API's schema and against the topics there are; None
    when there is no condition yet, or a problem (added to `invalid` by field id)."""
    built = editor.build(root)
    invalid.update({k: v for k, v in built.problems.items() if k not in invalid})
    if built.tree is None or built.problems:
        return None
    try:
        tree = TREE.validate_python(built.tree)
    except ValidationError as exc:
        for error in exc.errors():
            where = built.locate(tuple(error["loc"]), error["msg"])
            invalid.setdefault(where, _plain(error))
        return None
    try:
        segments.check_topics(session, tree, field="conditions")
    except InvalidField as exc:
        loc = editor.parse_loc(exc.field.removeprefix("conditions"))
        invalid.setdefault(built.locate(loc), "Choose a topic from the list")
        return None
    return tree


def _plain(error: ErrorDetails) -> str:
    said = WORDS.get(error["type"])
    if said is not None:
        return said
    message = error["msg"].removeprefix("Value error, ")
    return message[:1].upper() + message[1:]


def _count(
    session: Any, tree: Condition | None, topic_key: str, invalid: dict[str, str]
) -> Counted | None:
    topic = None
    if topic_key:
        topic = session.scalar(select(Topic).where(Topic.key == topic_key))
        if topic is None:
            invalid["topic"] = "Choose a topic from the list"
            return None
    stored = tree.dump() if tree is not None else None
    return Counted(
        count=audience.count(session, topic, stored),
        sample=audience.sample(session, topic, stored, limit=SAMPLE),
        topic=topic,
    )


def _editor(
    request: Request,
    staff: Staff,
    runtime: Any,
    found: Segment | None,
    *,
    shown: dict[str, str],
    root: editor.Node,
    invalid: dict[str, str] | None = None,
    check: bool = False,
    focus: str | None = None,
    notice: str | None = None,
) -> Response:
    """The editor, with the audience counted when the tree can be. Problems in `invalid`
    (and, with `check` or after a refused save, the tree's own) are shown by their fields
    and in the summary above."""
    invalid = dict(invalid or {})
    counting: dict[str, str] = {}
    with runtime.reads() as session:
        tree = _checked(session, root, counting)
        counted = None if counting else _count(session, tree, shown["topic"], counting)
        topics = list(
            session.scalars(
                select(Topic).where(Topic.key != account_mail.ACCOUNT_TOPIC).order_by(Topic.name)
            )
        )
    if invalid or check:
        invalid |= {k: v for k, v in counting.items() if k not in invalid}
    nodes = root.walk()
    response = page(
        request,
        "segment_edit.html",
        f"Segment {found.name}" if found else "New segment",
        staff,
        status=422 if invalid else 200,
        section="segments",
        segment=found,
        form=shown,
        root=root,
        invalid=invalid,
        problems=_summary(invalid, nodes),
        counted=counted,
        count_error=_first_problem(counting, root),
        topic_options=[(t.key, f"{t.name} ({t.key})") for t in topics],
        type_names=dict(editor.CONDITION_TYPES),
        kinds=KINDS,
        channels=CHANNELS,
        group_types=editor.GROUP_TYPES,
        condition_types=editor.CONDITION_TYPES,
        operators=editor.OPERATORS,
        labels=_labels(nodes),
        editable=staff.may(StaffRole.MARKETER),
        focus=focus,
        notice=notice,
    )
    response.headers["Content-Security-Policy"] = SCRIPTED_CSP
    return response


def _labels(nodes: list[editor.Node]) -> dict[str, str]:
    """A name for every node, as people count: the top group, group 2, condition 2.1."""
    labels = {}
    for node in nodes:
        numbers = ".".join(str(int(n) + 1) for n in node.path.split("-")[1:])
        if node.path == editor.ROOT:
            labels[node.path] = "the top group"
        else:
            labels[node.path] = f"{'group' if node.is_group else 'condition'} {numbers}"
    return labels


def _summary(invalid: dict[str, str], nodes: list[editor.Node]) -> list[tuple[str, str]]:
    """The error summary: the fields at fault in the order the form shows them, each message
    saying which condition it is about."""
    labels = _labels(nodes)
    order = ["key", "name", "description"]
    for node in nodes:
        order += [f"{node.path}-{f}" for f in ("type", *editor.FIELDS, "add")]
    order.append("topic")
    ranked = sorted(invalid, key=lambda f: order.index(f) if f in order else len(order))
    found = []
    for field in ranked:
        path = field.rsplit("-", 1)[0]
        where = labels.get(path)
        found.append(
            (
                field,
                f"{where[:1].upper()}{where[1:]}: {invalid[field]}" if where else invalid[field],
            )
        )
    return found


def _first_problem(invalid: dict[str, str], root: editor.Node) -> str | None:
    """Why the audience cannot be counted yet, as the summary would put it first."""
    return next((message for _, message in _summary(invalid, root.walk())), None)


def _words(conditions: dict[str, Any]) -> str:
    try:
        return segment_words.describe(conditions)
    except ValidationError:  # written before a rule it breaks; shown, not hidden
        return "conditions this version of Hub cannot read"


def _find(session: Any, key: str) -> Segment | None:
    try:
        return segments.get(session, key)
    except NotFound:
        return None


def _missing(request: Request, staff: Staff, key: str) -> Response:
    return page(
        request,
        "segment_missing.html",
        "Segment not found",
        staff,
        status=404,
        section="segments",
        key=key,
    )
