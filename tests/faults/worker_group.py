"""`hub worker --processes N` as a process group that a test kills and starts again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.test_serve import HUB


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, read from /proc: the container's init
    may never reap an orphan, so `killpg(pgid, 0)` would count the dead."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # it ended while we looked
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


class WorkerGroup:
    """`start()` runs the command in a session of its own; `stop(sig)` ends it.

    SIGKILL goes to every process of the group at once (the OOM killer, a lost machine, a
    container killed); SIGTERM goes to the parent alone, as `docker stop` or systemd send it,
    and the parent must stop its children itself.
    """

    def __init__(self, *, env: dict[str, str], cwd: Path, processes: int = 2) -> None:
        self.env, self.cwd, self.processes = env, cwd, processes
        self.log = cwd / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.orphans = 0  # processes left running after their parent exited on SIGTERM
        # Stops that outlived their grace period: each process's stacks, as faulthandler
        # wrote them before the group was killed the way a supervisor would.
        self.hangs: list[str] = []

    def start(self) -> None:
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [HUB, "worker", "--processes", str(self.processes)],
                env=self.env | {"PYTHONFAULTHANDLER": "1"},
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, grace: float = 30) -> float:
        """Seconds until no process of the group is left. Children outliving a SIGTERM'd
        parent are counted in `orphans` and killed, so they cannot blur the next round; a
        group still there after `grace` seconds is recorded in `hangs`, then killed."""
        process, self.process = self.process, None
        if process is None:
            return 0.0
        started = time.monotonic()
        if sig is signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):  # nothing of the group was left
                os.killpg(process.pid, signal.SIGKILL)
        else:
            process.send_signal(sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            stuck = group_members(process.pid)
            mark = self.log.stat().st_size
            for pid in stuck:  # faulthandler writes every thread's stack to the log
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGABRT)
            time.sleep(2)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            with self.log.open("rb") as log:
                log.seek(mark)
                stacks = log.read().decode(errors="replace")
            self.hangs.append(
                f"{sig.name} at start {self.starts}: {stuck} still running after {grace} s; "
                f"the log before it:\n{self.tail(20, before=mark)}\nstacks:\n{stacks}"
            )
        deadline = time.monotonic() + 10
        while (left := group_members(process.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if left:
            self.orphans += len(left)
            os.killpg(process.pid, signal.SIGKILL)
        return time.monotonic() - started

    def tail(self, lines: int = 40, *, before: int | None = None) -> str:
        """The log's last `lines` lines (up to byte `before`)."""
        data = self.log.read_bytes()[:before] if self.log.exists() else b""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
