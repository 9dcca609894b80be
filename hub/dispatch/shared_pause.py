"""Channel pauses kept in Redis, so every process and machine of a hub holds them at once
(RELIABILITY 30): the first worker to find a provider down pauses the channel for all, one
batch of the whole hub probes when the pause ends, and its answer resumes every worker.

The rules are `hub.dispatch.pause.Pauses`'s, as three Lua scripts over three keys per
channel: the outage (how long the last pause was, when the outage began), the pause itself
(a key that lives as long as the pause) and the probe (a key that lives while a probe batch is
out, and at most `longest`, so a probe whose worker died is replaced). Every length is a
Redis expiry and every answer a duration that the caller adds to its own clock, so machines
whose clocks disagree agree on the pause.

Redis out of reach: each process keeps its own pauses meanwhile (a `Pauses` of its own, the
embedded default's rules), and forgets them when Redis answers again. So a provider that is
down is still paused, per process, as before RELIABILITY 30, and batches a worker already
holds still go to a provider that is up. Holding them instead ("fail closed", as the rate
limit does) was tried and measured: with Redis the broker too, the batches it put off were
stranded until the sweeper's 45 s rule took them back, and a 30 s Redis outage mid-campaign
took 53 s to drain instead of 17. A pause protects a provider; the rate limit is the
carrier's contract, and that one never opens (`shared_rate`). One warning when Redis stops
answering, one when it answers again.
"""

from __future__ import annotations

import datetime as dt
import math

import redis
from redis.exceptions import RedisError

from hub.dispatch.pause import LONGEST, Admission, Pauses, announce_pause, announce_resume
from hub.dispatch.shared_store import Outage
from hub.domain import Channel

# KEYS: outage, pause, probe. ARGV: first ms, longest ms.
# Answers {0} go, {1, ms} put off for ms, {2} probe.
ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local left = redis.call('PTTL', KEYS[2])
if left > 0 then return {1, left} end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then return {2} end
return {1, tonumber(ARGV[1])}
"""
# KEYS: outage, pause, probe. ARGV: first ms, longest ms, Retry-After ms, outage kept ms.
# Answers {new (1) or the running pause (0), its ms left, ms since the outage began}.
TRIP = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local left = redis.call('PTTL', KEYS[2])
if left > 0 and redis.call('EXISTS', KEYS[3]) == 0 then return {0, left, 0} end
local last = redis.call('HMGET', KEYS[1], 'ms', 'since')
local ms = tonumber(ARGV[1])
if last[1] then ms = math.min(tonumber(ARGV[2]), tonumber(last[1]) * 2) end
ms = math.max(ms, tonumber(ARGV[3]))
local since = tonumber(last[2]) or now
redis.call('HSET', KEYS[1], 'ms', ms, 'since', since)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], '1', 'PX', ms)
redis.call('DEL', KEYS[3])
return {1, ms, now - since}
"""
# KEYS: outage, pause, probe. Answers the ms since the outage began, or -1 if none was.
RESUME = """
if redis.replicate_commands then redis.replicate_commands() end
local since = redis.call('HGET', KEYS[1], 'since')
if not since then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return now - tonumber(since)
"""
KEEP_OUTAGE = 3600.0  # seconds an outage is remembered after its last pause (doubling)


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class SharedPauses:
    """`PauseBoard` for every process that uses the same Redis and namespace."""

    def __init__(
        self, client: redis.Redis, *, namespace: str, first: float, longest: float = LONGEST
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.first = min(first, longest)
        self.longest = longest
        self.outage = Outage("shared channel pauses")
        self.alone = Pauses(first=first, longest=longest)  # while Redis is away
        self._admit = client.register_script(ADMIT)
        self._trip = client.register_script(TRIP)
        self._resume = client.register_script(RESUME)

    def keys(self, channel: Channel) -> list[str]:
        # One hash tag per channel: the three keys of a script live on one Redis Cluster node.
        base = f"{self.namespace}:{{pause:{channel.value}}}"
        return [base, f"{base}:pause", f"{base}:probe"]

    def _away(self, exc: RedisError) -> None:
        self.outage.failed(exc, meanwhile="each worker process pauses channels on its own")

    def _back(self) -> None:
        if self.outage.answered():  # what this process paused alone is the hub's to say again
            self.alone = Pauses(first=self.first, longest=self.longest)

    def admit(self, channel: Channel, now: dt.datetime) -> Admission:
        try:
            answer = self._admit(keys=self.keys(channel), args=[_ms(self.first), _ms(self.longest)])
        except RedisError as exc:
            self._away(exc)
            return self.alone.admit(channel, now)
        self._back()
        if answer[0] == 0:
            return Admission()
        if answer[0] == 2:
            return Admission(probe=True)
        return Admission(put_off_until=now + dt.timedelta(milliseconds=int(answer[1])))

    def probed(self, channel: Channel) -> None:
        self.alone.probed(channel)
        try:
            self.client.delete(self.keys(channel)[2])
        except RedisError as exc:  # the probe key expires after `longest` by itself
            self._away(exc)
        else:
            self._back()

    def trip(
        self, channel: Channel, now: dt.datetime, *, why: str, retry_after: float | None = None
    ) -> dt.datetime:
        args = [_ms(self.first), _ms(self.longest), _ms(retry_after or 0), _ms(KEEP_OUTAGE)]
        try:
            new, left, down = self._trip(keys=self.keys(channel), args=args)
        except RedisError as exc:
            self._away(exc)
            return self.alone.trip(channel, now, why=why, retry_after=retry_after)
        self._back()
        if new:
            announce_pause(channel, why=why, seconds=left / 1000, down=down / 1000)
        return now + dt.timedelta(milliseconds=int(left))

    def resume(self, channel: Channel, now: dt.datetime) -> None:
        self.alone.resume(channel, now)
        try:
            down = int(self._resume(keys=self.keys(channel)))
        except RedisError as exc:  # a pause left in Redis ends by itself; its probe resumes
            self._away(exc)
            return
        self._back()
        if down >= 0:
            announce_resume(channel, down=down / 1000)

    def close(self) -> None:
        self.client.close()
