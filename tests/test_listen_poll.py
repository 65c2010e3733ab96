"""Following a tenant through the case listing (``listen --poll``), against a real sandbox whose
cases advance on a clock and against a loopback fake whose listing pages wrongly: changes are
found without any webhook, the cursor is server time and survives a restart, and a listing
that repeats a page or changes its total stops with a clear error instead of looping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import anyio
import pytest

from batch.api import Client, Credentials, RetryPolicy
from batch.ledger import Ledger
from batch.pull import FollowOptions, ListenerStats, listen
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, SandboxThread, run_sandbox
from tests.listen_fake import FakeApi, running_fake
from tests.test_listen import create, reports, wait_for, wait_sync

CREDS = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
QUICK = FollowOptions(interval=0.2, first_backoff=0.1, max_backoff=0.2)


@asynccontextmanager
async def polling(client: Client, ledger: Ledger, out: Path | None,
                  stats: ListenerStats, follow: FollowOptions = QUICK) -> AsyncIterator[None]:
    """A listener with no webhook port that reads the listing on a short clock."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: listen(ledger=ledger, client=client, port=None, follow=follow,
                                     on_finalized_out=out, report_types=("pdf",),
                                     stats=stats))
        yield
        tg.cancel_scope.cancel()


async def test_polling_alone_follows_the_tenant_and_resumes_from_its_cursor(
        tmp_path: Path) -> None:
    out, path = tmp_path / "reports", tmp_path / "events.sqlite"
    async with run_sandbox(SandboxConfig(advance_after=0)) as sandbox, \
            Client(sandbox.url, credentials=CREDS, rate=500) as client:
        first, second = await create(client, 1), await create(client, 2)
        stats = ListenerStats()
        with Ledger.open(path) as ledger:
            async with polling(client, ledger, out, stats):
                await wait_for(lambda: ledger.listing_cursor() is not None)
                await client.set_status(first, "finalized")
                await wait_for(lambda: len(reports(out)) == 1)
                changed = (await client.get_case(first))["status_change_date"]
                await wait_for(lambda: ledger.listing_cursor() == _iso(changed))
            assert any(e["case_name"] == first and e["status"] == "finalized"
                       for e in ledger.events())
        # stopped: a change now is caught at the next start, from the cursor in the ledger
        await client.set_status(second, "finalized")
        again = ListenerStats()
        with Ledger.open(path) as ledger:
            async with polling(client, ledger, out, again):
                await wait_for(lambda: len(reports(out)) == 2)
        assert {p.parent.name for p in reports(out)} == {first, second}
        assert again.reports_downloaded == 1  # the first case's report was not pulled again


@pytest.mark.slow
async def test_cases_advancing_on_the_sandbox_clock_are_followed(tmp_path: Path) -> None:
    async with run_sandbox(SandboxConfig(advance_after=0.3)) as sandbox, \
            Client(sandbox.url, credentials=CREDS, rate=500) as client:
        stats = ListenerStats()
        with Ledger.open(tmp_path / "events.sqlite") as ledger:
            async with polling(client, ledger, None, stats):
                await wait_for(lambda: ledger.listing_cursor() is not None)
                name = await create(client, 3)

                def seen() -> set[str]:
                    return {e["status"] for e in ledger.events() if e["case_name"] == name}

                await wait_for(lambda: "delivered" in seen())
                await wait_for(lambda: ledger.event_counts()["pending"] == 0)
        assert stats.handled >= 1 and stats.follow.failures == 0


async def test_the_cursor_is_the_server_time_not_this_machine(tmp_path: Path) -> None:
    fake = FakeApi(listing=[{"name": "EMG100000001", "status": "finalized",
                             "status_change_date": "Sun, 04 Feb 2024 10:00:00 GMT"}])
    async with running_fake(fake), _client(fake) as client:
        with Ledger.open(tmp_path / "l.sqlite") as ledger:
            async with polling(client, ledger, None, ListenerStats()):
                await wait_for(lambda: len(fake.queries) >= 3)
            # first the server's Date, then the newest change date listed, never today
            assert ledger.listing_cursor() == "2024-02-05T01:31:43+00:00"
            since = [q.get("from_status_change_date") for q in fake.queries]
            assert since[1] == "2024-02-05T01:30:43+00:00"  # read a minute back
            assert [e["case_name"] for e in ledger.events()] == ["EMG100000001"]


@pytest.mark.slow
async def test_a_listing_that_repeats_a_page_stops_with_a_clear_error(tmp_path: Path) -> None:
    hits = [{"name": f"EMG1{n:08d}", "status": "delivered",
             "status_change_date": "Mon, 05 Feb 2024 01:00:00 GMT"} for n in range(150)]
    for wrong, words in (("ignore_from", "repeats an earlier page"),
                         ("growing_total", "total changed")):
        fake = FakeApi(listing=hits, **{wrong: True})  # type: ignore[arg-type]
        stats = ListenerStats()
        async with running_fake(fake), _client(fake) as client:
            with Ledger.open(tmp_path / f"{wrong}.sqlite") as ledger:
                ledger.set_listing_cursor("2024-02-05T00:00:00+00:00")
                async with polling(client, ledger, None, stats):
                    await wait_for(lambda s=stats: s.follow.failures >= 2)
                assert words in stats.follow.errors[0]
                assert ledger.listing_cursor() == "2024-02-05T00:00:00+00:00"  # not moved
                assert len(fake.queries) < 10  # no loop over the same page


def _client(fake: FakeApi) -> Client:
    return Client(fake.url, credentials=Credentials(username="u", password="p"),
                  retry=RetryPolicy(attempts=2, testing=True))


def _iso(rfc1123: str) -> str:
    return parsedate_to_datetime(rfc1123).astimezone(UTC).isoformat()


@pytest.mark.slow
def test_listen_poll_without_a_port(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(advance_after=0)) as sandbox:
        env = {**os.environ, "EMG_HOST": sandbox.url, "EMG_USERNAME": DEFAULT_USER,
               "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": ""}
        out, ledger_path = tmp_path / "reports", tmp_path / "events.sqlite"
        script = ("import sys; from batch.cli.pull import listen_command; "
                  "listen_command(sys.argv[2:])")
        args = ["--poll", "1", "--ledger", str(ledger_path), "--on-finalized", "pull-reports",
                "--out", str(out)]
        proc = subprocess.Popen([sys.executable, "-c", script, "--", *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            assert proc.stderr.readline().startswith(
                "following status changes through the case listing every 1 s")

            async def finalize() -> None:
                async with Client(sandbox.url, credentials=CREDS, rate=500) as client:
                    await client.set_status(await create(client, 9), "finalized")

            wait_sync(lambda: _cursor(ledger_path) is not None)
            anyio.run(finalize)
            wait_sync(lambda: len(reports(out)) == 1)
            proc.send_signal(signal.SIGINT)
            said, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert said == ""  # no webhook URL: nothing for a sender
        assert "1 report downloaded" in err and "listing read" in err
        assert "1 new change" in err or "new changes" in err


def _cursor(path: Path) -> str | None:
    if not path.exists():
        return None
    with Ledger.open(path, create=False) as ledger:
        return ledger.listing_cursor()


def test_iso_helper() -> None:
    assert _iso("Mon, 05 Feb 2024 01:31:43 GMT") == datetime(
        2024, 2, 5, 1, 31, 43, tzinfo=UTC).isoformat()


async def test_a_catch_up_reads_since_the_last_change_seen(tmp_path: Path) -> None:
    from tests.test_listen_security import running_listener

    fake = FakeApi(listing=[{"name": "EMG100000007", "status": "finalized",
                             "status_change_date": "Sun, 04 Feb 2024 09:30:00 GMT"}])
    path = tmp_path / "l.sqlite"
    seen = {"status": "delivered", "status_change_date": "Sun, 04 Feb 2024 09:00:00 GMT"}
    with Ledger.open(path) as ledger:  # a webhook seen before: the last change seen
        ledger.add_event("k", "EMG100000001", seen)
        ledger.mark_events_handled("EMG100000001", 1)
    async with running_fake(fake), running_listener(path, fake) as hook:
        assert fake.queries == []  # webhooks alone: the listing is not read at start
        assert (await hook.post({"event": "case_status_changed", "id": 7}))[0] == 200
        await wait_for(lambda: any(e["case_name"] == "EMG100000007"
                                   for e in hook.ledger.events()))
        assert fake.queries[0]["from_status_change_date"] == "2024-02-04T08:59:00+00:00"
        await wait_for(lambda: hook.ledger.listing_cursor() == "2024-02-04T09:30:00+00:00")
        assert hook.stats.unread == 1


async def test_doctor_says_when_the_listing_repeats_its_pages() -> None:
    from batch.jobs import Target, doctor_job

    hits = [{"name": f"EMG10000000{n}", "status": "delivered",
             "status_change_date": "Mon, 05 Feb 2024 01:00:00 GMT"} for n in range(3)]
    for ignore_from, verdict in ((False, "ok"), (True, "failed")):
        fake = FakeApi(listing=hits, ignore_from=ignore_from)
        async with running_fake(fake):
            report = await doctor_job(Target(host=fake.url, credentials=Credentials(
                username="u", password="p")))
        check = next(c for c in report.checks if c.name == "case listing")
        assert check.verdict == verdict, check
        if ignore_from:
            assert "repeats an earlier page" in check.found and "pull finalized" in check.meaning
