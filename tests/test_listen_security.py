"""The listener under attack, against a loopback fake API: forged posts refused before the
ledger is touched, a case the API refuses does not stop it (nor does a restart), floods stay
small and read each case once at a time, a full work list answers 503, big and slow bodies
and slow headers are cut off."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
import pytest

from batch.api import Client, Credentials, RetryPolicy
from batch.errors import AuthError
from batch.ledger import Ledger
from batch.pull import SIGNATURE_HEADER, HookAuth, ListenerLimits, ListenerStats, listen
from batch.serving import Limits
from tests.listen_fake import FakeApi, running_fake

TOKEN = "secret-path-token-0123456789"
SECRET = b"shared-secret-for-hmac-0123"
FAST = ListenerLimits(attempts=3, first_backoff=0.05, max_backoff=0.2)


@dataclass
class Listener:
    """A running listener: its webhook URL, ledger, counters and the fake API behind it."""

    url: str
    ledger: Ledger
    stats: ListenerStats
    fake: FakeApi
    auth: HookAuth

    @property
    def base(self) -> str:
        return self.url[: -len(self.auth.path)]

    async def post(self, event: dict[str, Any], *, url: str | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        body = orjson.dumps(event)
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.auth.secret is not None and SIGNATURE_HEADER not in sent:
            sent[SIGNATURE_HEADER] = self.auth.sign(body)
        async with aiohttp.ClientSession() as s, \
                s.post(url or self.url, data=body, headers=sent) as resp:
            text = await resp.read()
        try:
            return resp.status, orjson.loads(text)
        except orjson.JSONDecodeError:
            return resp.status, text


def event(case: str, status: str = "finalized", date: str = "Mon, 01 Jan 2024 00:00:00 GMT",
          ) -> dict[str, Any]:
    return {"event": "case_status_changed", "case_name": case, "status": status,
            "previous_status": "delivered", "status_change_date": date, "organization": "x"}


def client_for(fake: FakeApi) -> Client:
    return Client(fake.url, credentials=Credentials(username="u", password="p"),
                  retry=RetryPolicy(attempts=2, testing=True))


@asynccontextmanager
async def running_listener(
    ledger_path: Path, fake: FakeApi, *, auth: HookAuth | None = None,
    limits: ListenerLimits = FAST, failed: list[BaseException] | None = None,
) -> AsyncIterator[Listener]:
    """A listener on a free loopback port in front of *fake*; errors it stops with go to
    *failed* (when given) instead of failing the test."""
    auth = auth or HookAuth(token=TOKEN)
    stats = ListenerStats()
    urls: list[str] = []
    ready = anyio.Event()

    async def run(client: Client, ledger: Ledger) -> None:
        try:
            await listen(ledger=ledger, client=client, auth=auth, limits=limits, stats=stats,
                         ready=lambda url: (urls.append(url), ready.set()))
        except AuthError as err:
            if failed is None:
                raise
            failed.append(err)
            ready.set()

    async with client_for(fake) as client:
        with Ledger.open(ledger_path) as ledger:
            async with anyio.create_task_group() as tg:
                tg.start_soon(run, client, ledger)
                await ready.wait()
                yield Listener(urls[0] if urls else "", ledger, stats, fake, auth)
                tg.cancel_scope.cancel()


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 - polls the ledger and counters
            await anyio.sleep(0.01)


def files_size(folder: Path, pattern: str) -> int:
    """Bytes of the files matching *pattern* in *folder* (the ledger and its WAL)."""
    return sum(p.stat().st_size for p in folder.glob(pattern))


def settled(ledger: Ledger) -> Callable[[], bool]:
    def check() -> bool:
        counts = ledger.event_counts()
        return counts["pending"] == 0 and counts["handled"] + counts["failed"] > 0

    return check


# -- authentication ------------------------------------------------------------------------


async def test_forged_posts_are_refused_before_the_ledger(tmp_path: Path) -> None:
    auth = HookAuth(token=TOKEN, secret=SECRET)
    async with running_fake() as fake, \
            running_listener(tmp_path / "l.sqlite", fake, auth=auth) as hook:
        forged = event("EMG100000001")
        base = hook.base
        wrong_sig = {SIGNATURE_HEADER: "sha256=" + "0" * 64}
        # the old unauthenticated paths, a guessed token, a web page's text/plain POST
        assert (await hook.post(forged, url=base + "/"))[0] == 404
        assert (await hook.post(forged, url=base + "/webhook"))[0] == 404
        assert (await hook.post(forged, url=base + "/hooks/" + "x" * 28))[0] == 404
        assert (await hook.post(forged, url=base + "/hooks/"))[0] == 404
        assert (await hook.post(forged, headers=wrong_sig))[0] == 401
        assert (await hook.post(forged, headers={SIGNATURE_HEADER: ""}))[0] == 401
        # a valid signature of another body
        other = auth.sign(orjson.dumps(event("EMG100000002")))
        assert (await hook.post(forged, headers={SIGNATURE_HEADER: other}))[0] == 401
        async with aiohttp.ClientSession() as s, s.get(hook.url) as resp:
            assert resp.status == 405
        await anyio.sleep(0.1)
        assert hook.ledger.events() == [] and hook.ledger.unread_count() == 0
        assert hook.stats.received == 0 and sum(fake.reads.values()) == 0
        assert hook.stats.refused == {"old_path": 2, "wrong_token": 2, "bad_signature": 3}
        # the one way in: the token's path, signed (whatever the content type says)
        assert (await hook.post(forged, headers={"Content-Type": "text/plain"})) == (
            200, {"recorded": True, "duplicate": False})
        await wait_for(settled(hook.ledger))


def test_the_token_comes_from_the_environment_or_is_generated() -> None:
    given = HookAuth.from_env({"EMG_WEBHOOK_TOKEN": TOKEN, "EMG_WEBHOOK_SECRET": SECRET.decode()})
    assert given.path == f"/hooks/{TOKEN}" and not given.generated and given.secret == SECRET
    made, again = HookAuth.from_env({}), HookAuth.from_env({})
    assert made.generated and len(made.token) >= 40 and made.token != again.token
    assert made.secret is None and TOKEN not in repr(given) and SECRET.decode() not in repr(given)
    for bad in ({"EMG_WEBHOOK_TOKEN": "short"}, {"EMG_WEBHOOK_TOKEN": "a/b" * 10},
                {"EMG_WEBHOOK_SECRET": "short"}):
        with pytest.raises(Exception, match="EMG_WEBHOOK"):
            HookAuth.from_env(bad)


# -- failures of one case ------------------------------------------------------------------


async def test_a_refused_case_does_not_stop_the_listener(tmp_path: Path) -> None:
    fake = FakeApi(forbidden={"EMG100000403"}, missing={"EMG100000404"},
                   statuses={"EMG100000002": "finalized"})
    async with running_fake(fake), running_listener(tmp_path / "l.sqlite", fake) as hook:
        for case in ("EMG100000403", "EMG100000404", "EMG100000001", "EMG100000002"):
            assert (await hook.post(event(case)))[0] == 200
        await wait_for(settled(hook.ledger))
        rows = {e["case_name"]: e for e in hook.ledger.events()}
        assert rows["EMG100000001"]["handled_at"] and rows["EMG100000002"]["handled_at"]
        for case, words in (("EMG100000403", "Forbidden (HTTP 403)"),
                            ("EMG100000404", "Not found (HTTP 404)")):
            assert rows[case]["failed_at"] is not None and rows[case]["handled_at"] is None
            assert rows[case]["attempts"] == FAST.attempts and words in rows[case]["error"]
            assert fake.reads[case] >= FAST.attempts  # retried with backoff, then left
        assert hook.stats.gave_up == 2
        # still listening: a new event is handled
        assert (await hook.post(event("EMG100000003")))[0] == 200
        await wait_for(lambda: hook.ledger.event_counts()["handled"] == 3)


async def test_a_restart_with_a_failing_event_does_not_stop(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    fake = FakeApi(forbidden={"EMG100000403"})
    with Ledger.open(path) as ledger:  # a stop left this event open after two failures
        row = ledger.add_event("k", "EMG100000403", event("EMG100000403"))
        assert row is not None
        ledger.record_event_failure("EMG100000403", row, attempts=2, error="Forbidden",
                                    final=False)
    async with running_fake(fake), running_listener(path, fake) as hook:
        await wait_for(lambda: hook.ledger.event_counts()["failed"] == 1)
        assert hook.ledger.events()[0]["attempts"] == 3  # the third and last attempt
        assert (await hook.post(event("EMG100000001")))[0] == 200
        await wait_for(lambda: hook.ledger.event_counts()["handled"] == 1)
    reads = fake.reads["EMG100000403"]
    async with running_fake(fake), running_listener(path, fake) as hook:
        await anyio.sleep(0.2)  # given up: not read again on the next start
        assert fake.reads["EMG100000403"] == reads
        assert hook.ledger.event_counts() == {"handled": 1, "pending": 0, "failed": 1}
        assert hook.ledger.retry_failed_events() == 1


async def test_refused_own_credentials_stop_once_clearly(tmp_path: Path) -> None:
    fake = FakeApi(refuse_login=True)
    failed: list[BaseException] = []
    async with running_fake(fake), \
            running_listener(tmp_path / "l.sqlite", fake, failed=failed) as hook:
        assert (await hook.post(event("EMG100000001")))[0] == 200
        await wait_for(lambda: bool(failed))
        assert "login refused" in str(failed[0])
        row = hook.ledger.events()[0]
        assert row["attempts"] == 1 and row["failed_at"] is None  # taken up on the next start
        assert "authentication refused" in row["error"]


# -- floods --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_flood_of_duplicates_stays_small_and_reads_each_case_once_at_a_time(
        tmp_path: Path) -> None:
    fake = FakeApi(delay=0.02)
    path = tmp_path / "l.sqlite"
    async with running_fake(fake), running_listener(path, fake) as hook:
        cases = [f"EMG10000{n:04d}" for n in range(5)]
        padded = {"padding": "x" * 50_000}
        # a sender on one address holds at most 32 connections (the listener's per-peer cap)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as s:

            async def send(n: int) -> int:
                body = orjson.dumps({**event(cases[n % 5], date=f"D{n % 50}"), **padded})
                async with s.post(hook.url, data=body,
                                  headers={"Content-Type": "application/json"}) as resp:
                    return resp.status

            answers = await asyncio.gather(*(send(n) for n in range(2000)))
        assert set(answers) == {200}
        assert len(hook.ledger.events()) == 50  # 5 cases x 10 distinct dates each
        assert hook.stats.duplicates == 2000 - 50
        await wait_for(settled(hook.ledger))
        assert fake.peak == 1
        assert sum(fake.reads.values()) < 2000 / 10  # coalesced, not one read per event
    assert files_size(tmp_path, "l.sqlite*") < 2_000_000  # the 50 KB bodies were not kept


async def test_a_full_work_list_answers_503_without_recording(tmp_path: Path) -> None:
    fake = FakeApi(hold=asyncio.Event())
    limits = ListenerLimits(max_cases=2, retry_after=7)
    async with running_fake(fake), \
            running_listener(tmp_path / "l.sqlite", fake, limits=limits) as hook:
        assert (await hook.post(event("EMG100000001")))[0] == 200
        assert (await hook.post(event("EMG100000002")))[0] == 200
        async with aiohttp.ClientSession() as s, s.post(
                hook.url, json=event("EMG100000003")) as resp:
            assert resp.status == 503 and resp.headers["Retry-After"] == "7"
        # an event of a case already waiting joins its job
        assert (await hook.post(event("EMG100000001", date="later")))[0] == 200
        assert [e["case_name"] for e in hook.ledger.events()] == [
            "EMG100000001", "EMG100000002", "EMG100000001"]
        assert hook.stats.busy == 1
        fake.hold.set()  # type: ignore[union-attr]
        await wait_for(settled(hook.ledger))
        assert (await hook.post(event("EMG100000003")))[0] == 200  # room again


# -- bodies and connections ----------------------------------------------------------------


@pytest.mark.slow
async def test_trickling_wrong_token_peers_do_not_starve_signed_events(tmp_path: Path) -> None:
    """150 connections from ten 127.0.0.x addresses post to a wrong token and send their body
    a byte at a time, reconnecting when closed; 58 signed events from a sender with up to 8
    connections all get 200 meanwhile (the listener's own limits: 128 connections, 10 s for a
    body)."""
    auth = HookAuth(token=TOKEN, secret=SECRET)
    async with running_fake() as fake, running_listener(
            tmp_path / "l.sqlite", fake, auth=auth, limits=ListenerLimits()) as hook:
        port = int(hook.base.rsplit(":", 1)[1])
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            for n in range(150):
                tg.start_soon(_trickle, port, f"127.0.0.{2 + n % 10}", stop)
            await anyio.sleep(1.0)  # every attacker connected and trickling
            answers = await _send_signed(hook, [event(f"EMG1{n:08d}") for n in range(58)])
            stop.set()
        assert answers == [200] * 58
        server = hook.stats.server
        assert server is not None and server.screened >= 150
        assert hook.stats.refused["wrong_token"] >= 150 and hook.stats.busy == 0
        assert len(hook.ledger.events()) == 58


async def _send_signed(hook: Listener, events: list[dict[str, Any]]) -> list[int]:
    """Post *events*, signed, over at most 8 connections (as a sender's pool would)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as s:

        async def send(body: bytes) -> int:
            headers = {"Content-Type": "application/json",
                       SIGNATURE_HEADER: hook.auth.sign(body)}
            async with s.post(hook.url, data=body, headers=headers) as resp:
                return resp.status

        return list(await asyncio.gather(*(send(orjson.dumps(e)) for e in events)))


async def _trickle(port: int, source: str, stop: anyio.Event) -> None:
    """Post to a wrong token from *source*, the body a byte every 0.2 s; again when closed."""
    head = (b"POST /hooks/" + b"w" * 30 + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"application/json\r\nContent-Length: 10000\r\n\r\n")
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                           local_addr=(source, 0))
        except OSError:
            await anyio.sleep(0.05)
            continue
        try:
            writer.write(head)
            while not stop.is_set() and not reader.at_eof():
                writer.write(b"x")
                await writer.drain()
                with anyio.move_on_after(0.2):
                    await reader.read(4096)
        except OSError:
            pass
        finally:
            writer.close()


async def test_an_oversize_body_is_refused(tmp_path: Path) -> None:
    async with running_fake() as fake, running_listener(tmp_path / "l.sqlite", fake) as hook:
        big = orjson.dumps({**event("EMG100000001"), "padding": "x" * 70_000})
        async with aiohttp.ClientSession() as s:
            json_type = {"Content-Type": "application/json"}
            async with s.post(hook.url, data=big, headers=json_type) as resp:
                assert resp.status == 413

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read, then cut
                for start in range(0, len(big), 8192):
                    yield big[start:start + 8192]

            async with s.post(hook.url, data=chunks(), headers=json_type) as resp:
                assert resp.status == 413
        assert hook.ledger.events() == []


def _server_limits(**changes: Any) -> ListenerLimits:
    server = Limits(**{"max_connections": 32, "header_timeout": 0.5, "idle_timeout": 1.0,
                       "body_timeout": 0.5, "max_body": 64 * 1024, "linger": 0.2,
                       **changes})
    return ListenerLimits(server=server)


@pytest.mark.slow
async def test_a_slow_body_is_cut_off(tmp_path: Path) -> None:
    async with running_fake() as fake, running_listener(
            tmp_path / "l.sqlite", fake, limits=_server_limits()) as hook:
        port = int(hook.base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST {hook.auth.path} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     "application/json\r\nContent-Length: 100\r\n\r\n{".encode())
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 2
        writer.close()
        assert hook.ledger.events() == []


async def test_partial_headers_are_closed_and_a_valid_event_still_gets_in(
        tmp_path: Path) -> None:
    limits = _server_limits()
    async with running_fake() as fake, running_listener(
            tmp_path / "l.sqlite", fake, limits=limits) as hook:
        port = int(hook.base.rsplit(":", 1)[1])
        socks = await anyio.to_thread.run_sync(
            lambda: [_partial_header(port) for _ in range(200)])
        started = time.monotonic()
        # over the limit, each new connection displaced a waiting one: a valid event gets in
        assert (await hook.post(event("EMG100000001")))[0] == 200
        closed = await anyio.to_thread.run_sync(_wait_closed, socks, 5.0)
        elapsed = time.monotonic() - started
        assert closed == len(socks) and elapsed < limits.server.header_timeout + 1.5
        server = hook.stats.server
        assert server is not None and server.peak <= limits.server.max_connections
        # each one over the limit was pushed out, or timed out first on a slow machine
        assert server.evicted + server.header_timeouts >= 200 - limits.server.max_connections


def _partial_header(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /hooks/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def _wait_closed(socks: list[socket.socket], timeout: float) -> int:
    """How many of *socks* the server closed (EOF or reset) within *timeout* seconds."""
    deadline = time.monotonic() + timeout
    closed = 0
    for sock in socks:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            closed += sock.recv(1024) == b""
        except ConnectionResetError:
            closed += 1
        except TimeoutError:
            pass
        finally:
            sock.close()
    return closed
