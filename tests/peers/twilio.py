"""A Twilio-compatible Messages and Calls API on 127.0.0.1, checked against Twilio's OpenAPI."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiohttp import web
from jsonschema import Draft7Validator

# Twilio's own OpenAPI description (MIT, see twilio_spec/LICENSE), vendored so a clean clone
# checks the peer against it; TWILIO_OPENAPI points at another copy.
SPEC = Path(
    os.environ.get(
        "TWILIO_OPENAPI", Path(__file__).parent / "twilio_spec" / "twilio_api_v2010.json"
    )
)
ACCOUNT = "/2010-04-01/Accounts/{AccountSid}"
ROUTES = {  # (method, path under the account) -> the spec's operationId
    ("POST", "/Messages.json"): "CreateMessage",
    ("GET", "/Messages.json"): "ListMessage",
    ("GET", "/Messages/{Sid}.json"): "FetchMessage",
    ("POST", "/Messages/{Sid}.json"): "UpdateMessage",
    ("POST", "/Calls.json"): "CreateCall",
    ("GET", "/Calls.json"): "ListCall",
    ("GET", "/Calls/{Sid}.json"): "FetchCall",
    ("POST", "/Calls/{Sid}.json"): "UpdateCall",
}
ERROR_FIELDS = {"code": "integer", "message": "string", "more_info": "string", "status": "integer"}
E164 = re.compile(r"^(\w+:)?\+[1-9]\d{1,14}$")  # optionally behind a channel (whatsapp:)
MISSING_CODES = {"To": 21604, "From": 21603, "Body": 21602, "Url": 21205}  # Twilio's own
EXAMPLE_SID = re.compile(r"\b(AC|SM|CA)a{32}\b")  # the placeholders in the spec's examples
PROSE = {"description", "x-twilio", "nullable", "format", "title", "examples"}


def _plain(node: Any, components: dict[str, Any]) -> Any:
    """OpenAPI 3.0 to JSON Schema: inline $refs, `nullable` as a null type; drop prose."""
    if isinstance(node, list):
        return [_plain(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _plain(components[node["$ref"].rsplit("/", 1)[1]], components)
    out = {k: _plain(v, components) for k, v in node.items() if k not in PROSE}
    if "properties" in node:  # field names are not keywords: keep a field called "title"
        out["properties"] = {k: _plain(v, components) for k, v in node["properties"].items()}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if node.get("nullable") and "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def _closed(node: Any) -> Any:
    """Twilio answers every field (null when empty) and no others: hold the peer to that."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _closed(v) for k, v in node.items()}
    if "type" in out and isinstance(out.get("properties"), dict):
        out |= {"required": sorted(out["properties"]), "additionalProperties": False}
    return out


@dataclass(frozen=True)
class Operation:
    fields: dict[str, str]  # form field -> its JSON type
    required: list[str]
    groups: list[list[str]]  # one of each is required (the spec's x-twilio "conditional")
    query: frozenset[str]
    form: Draft7Validator
    answer: Draft7Validator
    example: str  # the spec's first example answer, as JSON: a template with every field


@dataclass
class Checked:
    values: dict[str, Any]  # typed as the spec says, array fields as lists
    problems: list[str]
    code: int  # the Twilio error code to refuse with when there are problems


class TwilioSpec:
    """The operations the peer serves, compiled once so checking costs microseconds."""

    def __init__(self, path: Path = SPEC) -> None:
        spec = json.loads(path.read_text())
        components = spec["components"]["schemas"]
        self.operations: dict[str, Operation] = {}
        for (method, tail), op_id in ROUTES.items():
            op = spec["paths"][ACCOUNT + tail][method.lower()]
            body = op.get("requestBody", {}).get("content", {})
            form = body.get("application/x-www-form-urlencoded", {}).get("schema")
            form = _plain(form or {"type": "object", "properties": {}}, components)
            conditional = op.get("x-twilio", {}).get("conditional", [])
            by_snake = {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): k for k in form["properties"]}
            ok = next(iter(op["responses"].values()))["content"]["application/json"]
            examples = [example["value"] for example in ok.get("examples", {}).values()]
            self.operations[op_id] = Operation(
                fields={k: v.get("type", "string") for k, v in form["properties"].items()},
                required=form.get("required", []),
                groups=[[by_snake[s] for s in g] for g in conditional],
                query=frozenset(p["name"] for p in op["parameters"] if p["in"] == "query"),
                form=Draft7Validator(form),
                answer=Draft7Validator(_closed(_plain(ok["schema"], components))),
                example=json.dumps(examples[0] if examples else {}),
            )
        fields = {k: {"type": t} for k, t in ERROR_FIELDS.items()}
        self.error = Draft7Validator(_closed({"type": "object", "properties": fields}))

    def check_form(self, op_id: str, pairs: list[tuple[str, str]]) -> Checked:
        """Type a request's form fields and say what in them breaks the spec."""
        op = self.operations[op_id]
        problems: list[str] = []
        values: dict[str, Any] = {}
        for name, text in pairs:
            kind = op.fields.get(name)
            if kind is None:
                problems.append(f"{op_id}: field {name!r} is not in the spec")
            elif kind == "array":
                values.setdefault(name, []).append(text)
            elif name in values:
                problems.append(f"{op_id}: field {name!r} given twice")
            else:
                values[name] = _coerce(kind, text)
        problems += [f"{op_id}: {error.message}" for error in op.form.iter_errors(values)]
        absent = [name for name in op.required if name not in values]  # reported just above
        unmet = [group for group in op.groups if not any(name in values for name in group)]
        problems += [f"{op_id}: one of {', '.join(group)} is required" for group in unmet]
        first = (absent or [group[0] for group in unmet] or [""])[0]
        return Checked(values, problems, MISSING_CODES.get(first, 20422))

    def check_answer(self, op_id: str | None, document: dict[str, Any]) -> list[str]:
        """What in an answer breaks the spec; `op_id` None checks a Twilio error document."""
        validator = self.operations[op_id].answer if op_id else self.error
        return [f"{op_id or 'error'} answer: {e.message}" for e in validator.iter_errors(document)]


def _coerce(kind: str, text: str) -> Any:
    """Form values are text: hand the validator the type the spec means, or the text to fail."""
    if kind == "integer" and text.lstrip("-").isdigit():
        return int(text)
    if kind == "number" and text.replace(".", "", 1).lstrip("-").isdigit():
        return float(text)
    if kind == "boolean" and text in {"true", "false"}:
        return text == "true"
    return text


@cache
def load_spec(path: Path = SPEC) -> TwilioSpec:
    """One compiled spec per process, shared by every peer (parsing the 1.8 MB takes ~50 ms)."""
    return TwilioSpec(path)


@dataclass(frozen=True)
class Fault:
    """How the peer answers a scripted destination instead of simply accepting."""

    status: int = 0  # 0: accept (after `delay`)
    code: int | None = None
    message: str = ""
    retry_after: str | None = None
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer (until the peer stops)


def too_many_requests(retry_after: int | None = 1) -> Fault:
    after = None if retry_after is None else str(retry_after)
    return Fault(429, 20429, "Too Many Requests", retry_after=after)


def server_error(status: int = 500) -> Fault:
    return Fault(status, status, "Service Unavailable" if status == 503 else "Internal error")


def unsubscribed() -> Fault:
    return Fault(400, 21610, "Attempt to send to unsubscribed recipient")


def invalid_number(code: int = 21211) -> Fault:
    return Fault(400, code, "The 'To' number is not a valid phone number.")


def hang() -> Fault:
    return Fault(hang=True)


def delay(ms: float) -> Fault:
    return Fault(delay=ms / 1000)


@dataclass(frozen=True)
class Outcome:
    """What becomes of an accepted message or call, told by the status callbacks the peer
    POSTs to its StatusCallback, signed as Twilio signs them."""

    statuses: tuple[str, ...]
    error_code: int | None = None
    answered_by: str | None = None  # given only when the call asked for MachineDetection


DELIVERED = Outcome(("sent", "delivered"))
COMPLETED = Outcome(("initiated", "ringing", "in-progress", "completed"))


def undelivered(code: int = 30003) -> Outcome:
    return Outcome(("sent", "undelivered"), code)


def carrier_opt_out() -> Outcome:
    """The carrier refuses: the person replied STOP to the sender before (Twilio's 21610)."""
    return Outcome(("failed",), 21610)


def call_ended(status: str) -> Outcome:
    """busy, no-answer, failed or canceled."""
    return Outcome(("initiated", "ringing", status))


def machine() -> Outcome:
    return Outcome(COMPLETED.statuses, answered_by="machine_start")


def sign(token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 with the auth token over the URL, then every field name
    and value in name order, in base64 (Twilio's documented scheme)."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


# A call's statuses and the StatusCallbackEvent that asks for each; the end always comes.
CALL_EVENTS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}


@dataclass(frozen=True)
class Callback:
    """One request the peer made to the hub, and the hub's answer."""

    url: str  # as signed: the URL Twilio was given
    params: dict[str, str]
    signature: str
    status: int  # the hub's HTTP status
    text: str


@dataclass
class Accepted:
    kind: str  # "message" or "call"
    sid: str
    form: dict[str, Any]  # as checked: typed, repeated fields as lists
    resource: dict[str, Any]  # what the peer answered (updates change it)
    at: float = field(default_factory=time.monotonic)


class TwilioPeer:
    """A Twilio stand-in on a free loopback port, served by aiohttp in a background thread.

    Every request's fields and every answer are checked against Twilio's OpenAPI; problems go
    to `violations`, and a request that breaks the spec is refused with 400 and a Twilio error.
    """

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "peer-token",
        hub: str | None = None,
    ) -> None:
        """`hub`: where the hub really listens (http://127.0.0.1:port). Callbacks are signed
        over the URL the hub gave (its public one) and sent there, as through a proxy; with
        no `hub`, the peer makes no callbacks."""
        self.account_sid, self.auth_token = account_sid, auth_token
        self.hub = hub
        self.callbacks: list[Callback] = []
        self.report_before_answer = False
        self._outcomes: dict[str, Outcome] = {}
        self._reports: set[asyncio.Task[None]] = set()
        self.spec = load_spec()
        self.violations: list[str] = []
        self.accepted: list[Accepted] = []
        self.attempts: list[tuple[str, int]] = []  # (To, status answered), faults included
        self._by_sid: dict[str, Accepted] = {}
        self._counts = {"message": 0, "call": 0}
        self._faults: dict[str, tuple[Fault, int | None]] = {}  # To -> (fault, times left)
        self._changed = threading.Condition()
        secret = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._authorization = f"Basic {secret}"
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def script(self, to: str, fault: Fault, *, times: int | None = None) -> None:
        """Answer requests for `to` with `fault`: the next `times` of them, or all (None)."""
        with self._changed:
            self._faults[to] = (fault, times)

    def outcome(self, to: str, outcome: Outcome) -> None:
        """Report `outcome` for what is sent to `to` (default: delivered, or completed)."""
        with self._changed:
            self._outcomes[to] = outcome

    def wait_for_callbacks(self, count: int, *, timeout: float = 10) -> list[Callback]:
        with self._changed:
            done = self._changed.wait_for(lambda: len(self.callbacks) >= count, timeout)
            found = list(self.callbacks)
        assert done, f"the peer made {len(found)} callbacks, not {count}, in {timeout} s"
        return found

    def text_hub(self, url: str, *, sender: str, to: str, body: str) -> Callback:
        """A person texts `body` from `sender` to the hub's number `to`: the inbound webhook."""
        params = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": self.account_sid,
            "From": sender,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        return self._call_hub(url, params)

    def press(self, call: Accepted, digits: str) -> Callback:
        """The callee presses `digits` during `call`: its Gather's action, signed."""
        gather = re.search(r'<Gather[^>]*action="([^"]+)"', str(call.form.get("Twiml", "")))
        assert gather, "the call's TwiML has no Gather with an action"
        params = {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "From": str(call.form.get("From")),
            "To": str(call.form["To"]),
            "Digits": digits,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
        }
        return self._call_hub(html.unescape(gather[1]), params)

    def replay(self, callback: Callback) -> Callback:
        """Send a request again exactly as it was: same fields, same signature."""
        return self._call_hub(callback.url, callback.params, signature=callback.signature)

    def forge(self, callback: Callback, **changes: str) -> Callback:
        """Send a request with fields changed but the signature it had: an attacker's copy."""
        return self._call_hub(callback.url, callback.params | changes, signature=callback.signature)

    def _call_hub(
        self, url: str, params: dict[str, str], *, signature: str | None = None
    ) -> Callback:
        future = asyncio.run_coroutine_threadsafe(self._post(url, params, signature), self._loop)
        return future.result(timeout=30)

    async def _post(self, url: str, params: dict[str, str], signature: str | None) -> Callback:
        assert self.hub is not None, "give the peer hub=... to let it call the hub"
        signature = signature if signature is not None else sign(self.auth_token, url, params)
        parts = urlsplit(url)
        target = self.hub.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"User-Agent": "TwilioProxy/1.1"}
        if signature:
            headers["X-Twilio-Signature"] = signature
        async with (
            aiohttp.ClientSession() as session,
            session.post(target, data=params, headers=headers) as answer,
        ):
            made = Callback(url, params, signature, answer.status, await answer.text())
        with self._changed:
            self.callbacks.append(made)
            self._changed.notify_all()
        return made

    async def _report(self, record: Accepted, outcome: Outcome) -> None:
        """The status callbacks of one message or call, in order, a moment apart."""
        url = str(record.form["StatusCallback"])
        wanted = set(record.form.get("StatusCallbackEvent") or [])
        for number, status in enumerate(outcome.statuses):
            final = number == len(outcome.statuses) - 1
            if record.kind == "call" and not final and CALL_EVENTS.get(status) not in wanted:
                continue
            await asyncio.sleep(0.02)
            record.resource["status"] = status
            params = self._status_params(record, status, outcome if final else None, number)
            await self._post(url, params, None)

    def _status_params(
        self, record: Accepted, status: str, final: Outcome | None, number: int
    ) -> dict[str, str]:
        common = {
            "AccountSid": self.account_sid,
            "From": str(record.form.get("From")),
            "To": str(record.form["To"]),
            "ApiVersion": "2010-04-01",
        }
        if final is not None and final.error_code is not None:
            common["ErrorCode"] = str(final.error_code)
        if record.kind == "message":
            return common | {
                "MessageSid": record.sid,
                "SmsSid": record.sid,
                "MessageStatus": status,
                "SmsStatus": status,
            }
        params = common | {
            "CallSid": record.sid,
            "CallStatus": status,
            "Direction": "outbound-api",
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(number),
            "Timestamp": format_datetime(datetime.now(UTC)),
        }
        if status == "completed":
            params |= {"CallDuration": "7", "Duration": "1"}
        if final is not None and final.answered_by and record.form.get("MachineDetection"):
            params["AnsweredBy"] = final.answered_by
        return params

    def wait_for(self, count: int, *, kind: str = "message", timeout: float = 10) -> list[Accepted]:
        """Block until `count` of `kind` were accepted, and return them all."""
        with self._changed:
            done = self._changed.wait_for(lambda: self._counts[kind] >= count, timeout)
            found = [record for record in self.accepted if record.kind == kind]
        assert done, f"the peer accepted {len(found)} {kind}s, not {count}, in {timeout} s"
        return found

    def take_violations(self) -> list[str]:
        with self._changed:
            taken, self.violations = self.violations, []
        return taken

    def start(self) -> TwilioPeer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._stopping.set)  # lets hung requests end
        for task in list(self._reports):
            self._loop.call_soon_threadsafe(task.cancel)
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> TwilioPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        app = web.Application()
        for (method, tail), op_id in ROUTES.items():
            app.router.add_route(method, ACCOUNT + tail, self._handler(op_id))
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def _handler(self, op_id: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != self._authorization:
                return self._error(401, 20003, "Authenticate")
            if request.match_info["AccountSid"] != self.account_sid:
                return self._error(404, 20404, "The requested resource was not found")
            if request.method == "GET":
                known = self.spec.operations[op_id].query
                unknown = [
                    f"{op_id}: no query parameter {n!r}" for n in request.query if n not in known
                ]
                checked = Checked(dict(request.query), unknown, 20422)
            else:
                checked = self.spec.check_form(op_id, parse_qsl(await request.text(), True))
            if checked.problems:
                with self._changed:
                    self.violations += checked.problems
                return self._error(400, checked.code, "; ".join(checked.problems))
            return await self._route(op_id, request.match_info.get("Sid"), checked.values)

        return handle

    async def _route(self, op_id: str, sid: str | None, form: dict[str, Any]) -> web.Response:
        kind = "message" if "Message" in op_id else "call"
        if op_id.startswith("Create"):
            return await self._create(kind, form)
        if op_id.startswith("List"):
            with self._changed:
                found = [r.resource for r in self.accepted if r.kind == kind]
            found = [r for r in found if r["to"] == form.get("To", r["to"])]
            uri = f"/2010-04-01/Accounts/{self.account_sid}/{kind.title()}s.json?Page=0"
            listing = dict.fromkeys(["next_page_uri", "previous_page_uri"]) | {
                **{"uri": uri, "first_page_uri": uri, "page": 0, "page_size": 50, "start": 0},
                **{f"{kind}s": found, "end": max(len(found) - 1, 0)},
            }
            return self._answer(op_id, 200, listing)
        record = self._by_sid.get(sid or "")
        if record is None:
            return self._error(404, 20404, "The requested resource was not found")
        if op_id.startswith("Update"):
            record.resource.update(
                {k.lower(): v for k, v in form.items() if k in {"Body", "Status"}}
            )
        return self._answer(op_id, 200, record.resource)

    async def _create(self, kind: str, form: dict[str, Any]) -> web.Response:
        to = str(form["To"])
        if not E164.match(to):  # Twilio's own refusal, not a breach of the spec
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        with self._changed:
            fault, times = self._faults.get(to, (Fault(), None))
            if times is not None:
                self._faults[to] = (fault, times - 1)
                if times <= 1:
                    del self._faults[to]
        if fault.hang:
            await self._stopping.wait()
            return self._error(503, 503, "The peer stopped")
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status:
            with self._changed:
                self.attempts.append((to, fault.status))
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return self._error(fault.status, fault.code or fault.status, fault.message, headers)
        sid = ("SM" if kind == "message" else "CA") + secrets.token_hex(16)
        record = Accepted(kind, sid, form, self._resource(kind, sid, form))
        with self._changed:
            self.accepted.append(record)
            self.attempts.append((to, 201))
            self._by_sid[sid] = record
            self._counts[kind] += 1
            self._changed.notify_all()
        answer = self._answer("Create" + kind.title(), 201, dict(record.resource))
        await self._after_accept(record)
        return answer

    async def _after_accept(self, record: Accepted) -> None:
        """Report the record's progress to its StatusCallback, as Twilio would: after the
        answer, or all of it before (`report_before_answer`), as when Twilio's callbacks
        overtake a slow client."""
        if self.hub is None or not record.form.get("StatusCallback"):
            return
        with self._changed:
            default = DELIVERED if record.kind == "message" else COMPLETED
            outcome = self._outcomes.get(str(record.form["To"]), default)
        if self.report_before_answer:
            await self._report(record, outcome)
            return
        task = asyncio.get_running_loop().create_task(self._report(record, outcome))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    def _resource(self, kind: str, sid: str, form: dict[str, Any]) -> dict[str, Any]:
        """The spec's example answer with this account, SID, numbers and a fresh "queued"."""
        example = self.spec.operations["Create" + kind.title()].example
        ours = EXAMPLE_SID.sub(lambda m: self.account_sid if m[1] == "AC" else sid, example)
        now = format_datetime(datetime.now(UTC))
        resource: dict[str, Any] = json.loads(ours) | {
            **{"to": form["To"], "from": form.get("From"), "status": "queued", "price": None},
            **{"date_created": now, "date_updated": now, "direction": "outbound-api"},
        }
        if kind == "call":
            nulls = ["start_time", "end_time", "duration", "forwarded_from", "phone_number_sid"]
            formatted = {"to_formatted": form["To"], "from_formatted": form.get("From")}
            return resource | dict.fromkeys(nulls) | formatted | {"queue_time": "0"}
        body = str(form.get("Body", ""))
        single, part = (160, 153) if body.isascii() else (70, 67)  # GSM-7 or UCS-2, roughly
        segments = 1 if len(body) <= single else -(-len(body) // part)
        service = form.get("MessagingServiceSid")
        return (
            resource
            | {"body": body, "num_segments": str(segments), "date_sent": None}
            | {"messaging_service_sid": service, "price_unit": "USD"}
        )

    def _answer(
        self, op_id: str | None, status: int, document: Any, headers: Any = None
    ) -> web.Response:
        problems = self.spec.check_answer(op_id, document)
        if problems:
            with self._changed:
                self.violations += problems
        return web.json_response(document, status=status, headers=headers)

    def _error(self, status: int, code: int, message: str, headers: Any = None) -> web.Response:
        more = f"https://www.twilio.com/docs/errors/{code}"
        document = {"code": code, "message": message, "more_info": more, "status": status}
        return self._answer(None, status, document, headers)


if __name__ == "__main__":  # python -m tests.peers.twilio: serve until stdin closes (benchmarks)
    import sys

    with TwilioPeer() as served:
        started = {"url": served.url, "account_sid": served.account_sid}
        print(json.dumps(started | {"auth_token": served.auth_token}), flush=True)
        sys.stdin.read()
        print(json.dumps({"accepted": len(served.accepted), "violations": served.violations}))
