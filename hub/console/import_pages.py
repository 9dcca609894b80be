"""Console pages for contact imports: upload a CSV or NDJSON file (optionally subscribing
everyone in it to a topic), watch its progress, download the rows' errors, see past imports.

The upload is a plain multipart form, so it works without JavaScript; the file is spooled to
disk as it arrives (never held whole in memory), then run in the background by the
`import_runner` of this process while the progress page refreshes itself every second.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import IO, Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from hub.console.audience_forms import (
    CHANNEL_NAMES,
    ORDINALS,
    Problem,
    Refused,
    problems_of,
    rank_ids,
    ranked_channels,
    staff_actor,
)
from hub.console.auth import NotAllowed, SessionsDep, Staff, StaffDep
from hub.console.import_runner import runner_of
from hub.console.pages import back_to, page
from hub.db.base import utcnow
from hub.db.models import ImportJob, Topic
from hub.domain import Channel, ImportState, StaffRole
from hub.runtime import Runtime
from hub.services import import_jobs
from hub.services.errors import HubError, InvalidField
from hub.services.imports import ImportFormat, SubscribeTo, format_for, subscribe
from hub.web import downloads
from hub.web import static as static_files
from hub.web.deps import RuntimeDep
from hub.web.paging import RowId
from hub.web.static import SCRIPTED_CSP

router = APIRouter(prefix="/console", include_in_schema=False)
UPLOAD = "/console/imports/new"  # streamed: app.py exempts it from the body size cap
PAGE = 50
SHOWN_PROBLEMS = 10  # on the page; the download has them all
STATIC = Path(static_files.__file__).parent / "static"
CACHED = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
COPY_CHUNK = 1 << 20
FORMATS = (("", "Tell from the file name"), ("csv", "CSV"), ("ndjson", "NDJSON"))
LABELS = {
    "file": "File",
    "format": "Format",
    subscribe.TOPIC_FIELD: "Topic",
    subscribe.CHANNELS_FIELD: "Channels",
    subscribe.SOURCE_FIELD: "Where they agreed",
    subscribe.NOTE_FIELD: "Note",
}
_CHANNELS = list(Channel)


@router.get("/imports")
def import_list(
    request: Request,
    staff: StaffDep,
    runtime: RuntimeDep,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    with runtime.reads() as session:
        jobs = import_jobs.recent(session, before_id=before, limit=PAGE + 1)
    if _settle(runtime, jobs):
        with runtime.reads() as session:
            jobs = import_jobs.recent(session, before_id=before, limit=PAGE + 1)
    older = jobs[PAGE - 1].id if len(jobs) > PAGE else None
    return page(
        request,
        "imports.html",
        "Imports",
        staff,
        section="contacts",
        jobs=jobs[:PAGE],
        older=older,
        paged=before is not None,
    )


@router.get("/imports/new")
def import_form(request: Request, staff: StaffDep, runtime: RuntimeDep) -> Response:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)
    return _form(request, staff, runtime, {})


def _form(
    request: Request,
    staff: Staff,
    runtime: Any,
    values: dict[str, Any],
    problems: list[Problem] | None = None,
) -> Response:
    with runtime.reads() as session:
        topics = list(session.scalars(select(Topic).order_by(Topic.key)))
    ranks = {c: int(v) for c, v in values.get("ranks", {}).items() if str(v).isdigit()}
    return page(
        request,
        "import_new.html",
        "Import people from a file",
        staff,
        status=422 if problems else 200,
        section="contacts",
        values=values,
        ranks=ranks,
        topics=topics,
        formats=FORMATS,
        channels=_CHANNELS,
        names=CHANNEL_NAMES,
        ordinals=ORDINALS,
        problems=problems or [],
    )


@router.post("/imports/new")
async def import_upload(
    request: Request, staff: StaffDep, sessions: SessionsDep, runtime: RuntimeDep
) -> Response:
    if not staff.may(StaffRole.MARKETER):
        raise NotAllowed(StaffRole.MARKETER)
    try:
        async with request.form(max_files=1, max_fields=40) as form:
            return await _received(request, staff, sessions, runtime, form)
    except HTTPException as exc:  # a multipart body the parser refused
        problem = Problem("file", f"File: the upload could not be read ({exc.detail})")
        return _form(request, staff, runtime, {}, [problem])


async def _received(
    request: Request, staff: Staff, sessions: Any, runtime: Any, form: FormData
) -> Response:
    fields = {
        name: [v for v in form.getlist(name) if isinstance(v, str)]
        for name in form
        if name != "file"
    }
    text = {name: values[0].strip() if values else "" for name, values in fields.items()}
    if not sessions.check_post(request, staff, text.get("csrf")):
        raise NotAllowed(StaffRole.MARKETER)
    values: dict[str, Any] = {
        "format": text.get("format", ""),
        "topic": text.get(subscribe.TOPIC_FIELD, ""),
        "ranks": {c.value: text.get(f"rank-{c.value}", "") for c in _CHANNELS},
        "source": text.get(subscribe.SOURCE_FIELD, ""),
        "note": text.get(subscribe.NOTE_FIELD, ""),
    }
    upload = form.get("file")
    ordered: list[Channel] = []
    try:
        problems: list[Problem] = []
        fmt = None
        try:
            fmt = _format_of(upload, text.get("format", ""))
        except Refused as exc:
            problems += exc.problems
        option = None
        try:
            ordered = ranked_channels(fields, _CHANNELS)
            with runtime.reads() as session:
                option = subscribe.checked(
                    session,
                    topic=text.get(subscribe.TOPIC_FIELD),
                    channels=ordered,
                    consent_source=text.get(subscribe.SOURCE_FIELD),
                    note=text.get(subscribe.NOTE_FIELD),
                )
        except (Refused, InvalidField) as exc:
            problems += problems_of(exc, labels=LABELS, ids=_ids(ordered))
        if problems or fmt is None or not isinstance(upload, UploadFile):
            raise Refused(problems)
        job_id = await _start(
            request, staff, runtime=runtime, upload=upload, fmt=fmt, option=option
        )
    except (Refused, HubError) as exc:
        problems = problems_of(exc, labels=LABELS, ids=_ids(ordered))
        return _form(request, staff, runtime, values, problems)
    return back_to(f"/console/imports/{job_id}")


def _ids(ordered: list[Channel]) -> dict[str, str]:
    """The option's fields (`subscribe_channels[0]`) to the inputs they are about."""
    return {
        subscribe.CHANNELS_FIELD + name.removeprefix("channels"): input_id
        for name, input_id in rank_ids(ordered).items()
    }


def _format_of(upload: Any, chosen: str) -> ImportFormat:
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Refused([Problem("file", "File: choose the CSV or NDJSON file to import")])
    if not upload.size:
        raise Refused([Problem("file", f"File: {upload.filename} is empty")])
    if chosen:
        try:
            return ImportFormat(chosen)
        except ValueError:
            raise Refused([Problem("format", "Format: choose CSV or NDJSON")]) from None
    try:
        return format_for(None, upload.filename)
    except ValueError:
        raise Refused(
            [
                Problem(
                    "file",
                    f"File: cannot tell the format of {upload.filename}: its name should end "
                    "in .csv, .ndjson or .jsonl, or choose its format below",
                )
            ]
        ) from None


async def _start(
    request: Request,
    staff: Staff,
    *,
    runtime: Any,
    upload: UploadFile,
    fmt: ImportFormat,
    option: SubscribeTo | None,
) -> int:
    """Keep the upload in a temporary file of our own (the form's goes with the request),
    record the job and hand both to the runner."""

    def keep() -> IO[bytes]:
        # No name: gone when closed (the runner closes it), or if the process dies.
        kept = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this function
        upload.file.seek(0)
        shutil.copyfileobj(upload.file, kept, COPY_CHUNK)
        kept.flush()
        return kept

    def record() -> int:
        with runtime.sessions() as session:
            job = import_jobs.start(
                session,
                created_by=staff.email,
                filename=upload.filename,
                fmt=fmt,
                size=upload.size,
                subscribe=option,
            )
            session.commit()
            return job.id

    kept = await anyio.to_thread.run_sync(keep)
    try:
        job_id = await anyio.to_thread.run_sync(record)
    except BaseException:
        kept.close()
        raise
    runner_of(request).submit(
        job_id,
        kept,
        fmt=fmt,
        actor=staff_actor(request, staff).via("console.import"),
        subscribe=option,
    )
    return job_id


@router.get("/imports/progress.js")
def progress_script() -> Response:
    """The progress page's script (from the hub itself: the page's policy allows no other)."""
    script = (STATIC / "imports.js").read_text()
    return PlainTextResponse(script, media_type="text/javascript", headers=CACHED)


@router.get("/imports/{job_id}")
def import_progress(
    job_id: RowId,
    request: Request,
    staff: StaffDep,
    runtime: RuntimeDep,
) -> Response:
    with runtime.reads() as session:
        job = session.get(ImportJob, job_id)
    if job is not None and _settle(runtime, [job]):
        with runtime.reads() as session:
            job = session.get(ImportJob, job_id)
    if job is None:
        return _missing(request, staff, job_id)
    running = job.state is ImportState.RUNNING
    subscribe_to = (job.options or {}).get("subscribe")
    problems = import_jobs.error_rows(job.errors or "")
    response = page(
        request,
        "import_job.html",
        f"Import of {job.filename or 'a file'}",
        staff,
        section="contacts",
        job=job,
        running=running,
        subscribe=subscribe_to,
        percent=_percent(job),
        first_problems=problems[:SHOWN_PROBLEMS],
        problem_count=len(problems),
    )
    if running:  # imports.js keeps it up to date
        response.headers["Content-Security-Policy"] = SCRIPTED_CSP
    return response


def _settle(runtime: Runtime, jobs: list[ImportJob]) -> bool:
    """Mark jobs whose process is gone as failed; whether there were any (then read again)."""
    now = utcnow()
    gone = [job.id for job in jobs if import_jobs.stopped(job, now)]
    if gone:
        import_jobs.mark_stopped(runtime.sessions, gone)
    return bool(gone)


def _percent(job: ImportJob) -> int | None:
    if job.state is not ImportState.RUNNING:
        return 100
    if not job.bytes_total:
        return None
    return min(100, job.bytes_read * 100 // job.bytes_total)


def _missing(request: Request, staff: Staff, job_id: int) -> Response:
    return page(
        request,
        "imports.html",
        "No such import",
        staff,
        status=404,
        section="contacts",
        jobs=[],
        older=None,
        paged=False,
        missing=job_id,
    )


@router.get("/imports/{job_id}/errors.csv")
def import_errors(
    job_id: RowId, request: Request, staff: StaffDep, runtime: RuntimeDep
) -> Response:
    """The rows' problems: line, field, message (cells made safe for spreadsheets)."""
    with runtime.reads() as session:
        job = session.get(ImportJob, job_id)
    if job is None or not job.errors:
        return _missing(request, staff, job_id)
    return downloads.csv(import_jobs.error_download(job.errors), f"import-{job_id}-errors.csv")
