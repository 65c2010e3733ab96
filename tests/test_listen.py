"""The webhook listener against a real sandbox that sends webhooks to it over loopback:
durable records, duplicate and out-of-order deliveries, report pulls for finalized cases, and
the command that prints where to send them once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from batch.api import Client, Credentials
from batch.errors import UsageError
from batch.ledger import Ledger
from batch.ledger.ledger import UNREAD_KEPT
from batch.outputs.status import render_status, status_report
from batch.pull import HookAuth, ListenerStats, dedupe_key, listen
from batch.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SandboxConfig,
    SandboxThread,
    run_sandbox,
)
from tests.cases import create_minimal

REPORT_ROUTE = "GET /api/test/v2/{case}/reports/{type}/{id}"
TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def create(client: Client, n: int) -> str:
    """Create one case; its name."""
    return await create_minimal(client, f"HOOK-{n:04d}", gender="Male")


@dataclass
class Rig:
    """A sandbox whose webhooks go to a running listener."""

    sandbox_url: str
    hook_url: str
    client: Client
    ledger: Ledger
    out: Path
    stats: ListenerStats

    async def post(self, event: dict[str, Any]) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.post(self.hook_url, json=event) as r:
            return r.status, await r.json()

    async def report_gets(self) -> int:
        async with aiohttp.ClientSession() as s, s.get(
            f"{self.sandbox_url}/_sandbox/stats"
        ) as resp:
            stats = await resp.json()
        return sum(stats["requests"].get(REPORT_ROUTE, {}).values())


async def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    with anyio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 - polls files and the ledger, not a task
            await anyio.sleep(0.02)


@asynccontextmanager
async def running_rig(tmp_path: Path, *, webhook: bool = True) -> AsyncIterator[Rig]:
    """Used inside each test: a task group cannot span a fixture's setup and teardown.
    Without *webhook*, the sandbox sends none (as a tenant nobody registered a URL for)."""
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hooks/{TOKEN}"
    config = SandboxConfig(advance_after=0, webhook=hook if webhook else None)
    creds = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
    stats = ListenerStats()
    async with run_sandbox(config) as sandbox, \
            Client(sandbox.url, credentials=creds, rate=500) as client:
        with Ledger.open(tmp_path / "events.sqlite") as ledger:
            ready = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: listen(ledger=ledger, client=client, port=port,
                                             auth=HookAuth(token=TOKEN),
                                             on_finalized_out=tmp_path / "reports",
                                             report_types=("pdf", "json"),
                                             ready=lambda _url: ready.set(), stats=stats))
                await ready.wait()
                yield Rig(sandbox.url, hook, client, ledger, tmp_path / "reports", stats)
                tg.cancel_scope.cancel()


def reports(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.suffix in (".pdf", ".json"))


def all_handled(ledger: Ledger, status: str | None = None) -> Callable[[], bool]:
    def check() -> bool:
        events = [e for e in ledger.events() if status is None or e["status"] == status]
        return bool(events) and all(e["handled_at"] is not None for e in events)

    return check


async def test_finalized_cases_get_their_reports(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:
        names = [await create(rig.client, n) for n in range(3)]
        for name in names[:2]:
            await rig.client.set_status(name, "finalized")
        await wait_for(lambda: len(reports(rig.out)) == 4)
        await wait_for(all_handled(rig.ledger, "finalized"))
        assert {p.parent.name for p in reports(rig.out)} == set(names[:2])
        finalized = [e for e in rig.ledger.events() if e["status"] == "finalized"]
        assert sorted(e["case_name"] for e in finalized) == names[:2]
        # Every change is recorded: uploading -> in_progress -> delivered for each case too.
        await wait_for(lambda: len(rig.ledger.events()) == 3 * 2 + 2)
        assert not list(rig.out.rglob("*.part"))


async def test_duplicate_deliveries_are_recorded_and_acted_on_once(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:
        name = await create(rig.client, 1)
        await rig.client.set_status(name, "finalized")
        await wait_for(lambda: len(reports(rig.out)) == 2)
        await wait_for(all_handled(rig.ledger, "finalized"))
        event = next(e for e in rig.ledger.events() if e["status"] == "finalized")
        body = {"event": "case_status_changed", "case_name": name, "status": "finalized",
                "previous_status": "delivered", "status_change_date": event["status_change_date"],
                "organization": "sandbox"}
        before = await rig.report_gets()
        for _ in range(3):
            status, answer = await rig.post(body)
            assert status == 200 and answer == {"recorded": False, "duplicate": True}
        assert len([e for e in rig.ledger.events() if e["status"] == "finalized"]) == 1
        assert rig.stats.duplicates >= 3
        await anyio.sleep(0.2)
        assert await rig.report_gets() == before


async def test_out_of_order_events_follow_the_server_truth(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:
        name = await create(rig.client, 2)
        await wait_for(lambda: any(e["status"] == "delivered" for e in rig.ledger.events()))
        # A "finalized" event for a case that is, in truth, only delivered: nothing to pull.
        forged = {"case_name": name, "status": "finalized", "previous_status": "delivered",
                  "status_change_date": "Mon, 01 Jan 2024 00:00:00 GMT"}
        assert (await rig.post(forged))[0] == 200
        await wait_for(all_handled(rig.ledger))
        assert reports(rig.out) == []
        # Finalize for real, then a stale "delivered" event arrives late: reports stay once.
        await rig.client.set_status(name, "finalized")
        await wait_for(lambda: len(reports(rig.out)) == 2)
        before = await rig.report_gets()
        stale = {"case_name": name, "status": "delivered", "previous_status": "in_progress",
                 "status_change_date": "Sun, 31 Dec 2023 00:00:00 GMT"}
        assert (await rig.post(stale))[1]["recorded"] is True
        await wait_for(all_handled(rig.ledger))
        assert await rig.report_gets() == before
        assert len(reports(rig.out)) == 2


async def test_bodies_in_other_shapes_are_found_by_their_case(tmp_path: Path) -> None:
    async with running_rig(tmp_path, webhook=False) as rig:
        name = await create(rig.client, 4)
        shapes: list[dict[str, Any]] = [
            {"name": name, "status": "delivered", "status_change_date": "D1"},
            {"test_name": name, "status": "delivered", "status_change_date": "D2"},
            {"case": name, "status_change_date": "D3"},
            {"data": {"case_name": name, "status": "delivered", "status_change_date": "D4"}},
            {"event": "status_changed", "case": {"name": name, "status_change_date": "D5"}},
            {"event": "case.updated", "type": "other", "case_name": name,
             "status_change_date": "D6"},
            # a name that looks like a case wins over other names
            {"name": "case_status_changed", "payload": {"test_name": name},
             "status_change_date": "D7"},
        ]
        for body in shapes:
            assert await rig.post(body) == (200, {"recorded": True, "duplicate": False})
        await wait_for(all_handled(rig.ledger))
        events = rig.ledger.events()
        assert [e["case_name"] for e in events] == [name] * len(shapes)
        assert [e["status_change_date"] for e in events] == [f"D{n}" for n in range(1, 8)]
        # long or odd status fields are clipped, not refused
        status, _ = await rig.post({"case_name": name, "status": "x" * 500})
        assert status == 200 and len(rig.ledger.events()[-1]["status"]) == 100
        # a form body, with the event as JSON in its payload field
        async with aiohttp.ClientSession() as s, s.post(
                rig.hook_url, data={"payload": f'{{"case_name": "{name}"}}'}) as resp:
            assert resp.status == 200 and (await resp.json())["recorded"] is True
        assert rig.ledger.unread_count() == 0 and rig.stats.refused == {}


async def test_an_event_without_a_date_is_never_folded_into_an_earlier_one(
        tmp_path: Path) -> None:
    async with running_rig(tmp_path, webhook=False) as rig:
        name = await create(rig.client, 5)
        for _ in range(2):  # two changes the sender describes the same way
            assert (await rig.post({"case_name": name}))[1]["recorded"] is True
        assert len(rig.ledger.events()) == 2


async def test_a_body_that_names_no_case_is_kept_and_the_listing_catches_up(
        tmp_path: Path) -> None:
    async with running_rig(tmp_path, webhook=False) as rig:
        name = await create(rig.client, 6)
        await rig.client.set_status(name, "finalized")  # no webhook reaches the listener
        unreadable = [b'{"event": "case_status_changed", "id": 1000001}', b"not json",
                      b"[1, 2]", b'{"case_name": "../../etc"}']
        async with aiohttp.ClientSession() as s:
            for body in unreadable:
                async with s.post(rig.hook_url, data=body,
                                  headers={"Content-Type": "application/json"}) as resp:
                    assert resp.status == 200
                    assert await resp.json() == {"recorded": True, "understood": False}
        # the listing, read to catch up, found the finalized case: its reports are pulled
        await wait_for(lambda: len(reports(rig.out)) == 2)
        assert {p.parent.name for p in reports(rig.out)} == {name}
        assert rig.stats.unread == 4 and rig.ledger.unread_count() == 4
        kept = rig.ledger.unread_bodies()
        assert [k["body"] for k in kept] == unreadable[::-1]
        assert "no case name found" in kept[0]["reason"] and kept[2]["reason"] == (
            "the body is not JSON")
        assert "Content-Type" in kept[0]["header_names"]
        assert rig.ledger.listing_cursor() is not None
        assert rig.stats.follow.reads >= 1 and rig.stats.follow.recorded >= 1


def test_unread_bodies_are_bounded_and_counted(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "events.sqlite") as ledger:
        for n in range(UNREAD_KEPT + 5):
            ledger.keep_unread(b"%d" % n, content_type="text/plain", header_names=[],
                               reason="r")
        assert ledger.unread_count() == UNREAD_KEPT + 5
        kept = ledger.unread_bodies(limit=1000)
        assert len(kept) == UNREAD_KEPT and kept[0]["body"] == b"%d" % (UNREAD_KEPT + 4)
        assert "Webhook bodies that named no case: 105" in render_status(status_report(ledger))
    from click.testing import CliRunner

    from batch.cli.pull import listen_command

    shown = CliRunner().invoke(listen_command, ["--ledger", str(tmp_path / "events.sqlite"),
                                                "--show-events"])
    assert "webhook bodies that named no case: 105" in shown.output


def test_the_help_says_what_the_secret_is_for() -> None:
    from click.testing import CliRunner

    from batch.cli.pull import listen_command

    text = " ".join(CliRunner().invoke(listen_command, ["--help"]).output.split())
    assert "This secret URL is how Emedgene's sender is authenticated" in text
    assert "EMG_WEBHOOK_SECRET only for a relay of your own that signs" in text
    assert "Emedgene's sender cannot compute it" in text and "--poll SECONDS" in text


async def test_events_left_unhandled_are_handled_at_start(tmp_path: Path) -> None:
    creds = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
    async with run_sandbox(SandboxConfig(advance_after=0)) as sandbox, \
            Client(sandbox.url, credentials=creds, rate=500) as client:
        name = await create(client, 3)
        await client.set_status(name, "finalized")
        event = {"case_name": name, "status": "finalized", "status_change_date": "x"}
        with Ledger.open(tmp_path / "events.sqlite") as ledger:
            assert ledger.add_event(dedupe_key(event), name, event)  # recorded, then a crash
            out = tmp_path / "reports"
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: listen(ledger=ledger, client=client, on_finalized_out=out))
                await wait_for(all_handled(ledger))
                tg.cancel_scope.cancel()
            assert [p.name for p in reports(out)] == ["pdf-700001.pdf"]


async def test_non_loopback_needs_allow_remote(tmp_path: Path) -> None:
    creds = Credentials(token="t")
    async with Client("http://127.0.0.1:9", credentials=creds) as client:
        with Ledger.open(tmp_path / "e.sqlite") as ledger, pytest.raises(UsageError):
            await listen(ledger=ledger, client=client, host="0.0.0.0")


def test_dedupe_key() -> None:
    event = {"case_name": "EMG1", "status": "finalized", "status_change_date": "D"}
    assert dedupe_key(event) == "EMG1|finalized|D"
    assert dedupe_key({**event, "organization": "x"}) == dedupe_key(event)


@pytest.mark.slow
def test_listen_command_until_interrupted(tmp_path: Path) -> None:
    port = free_port()
    config = SandboxConfig(advance_after=0, webhook=f"http://127.0.0.1:{port}/hooks/{TOKEN}")
    with SandboxThread(config) as sandbox:
        env = {**os.environ, "EMG_HOST": sandbox.url, "EMG_USERNAME": DEFAULT_USER,
               "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "", "EMG_WEBHOOK_TOKEN": TOKEN}
        env.pop("EMG_WEBHOOK_SECRET", None)
        out, ledger_path = tmp_path / "reports", tmp_path / "events.sqlite"
        script = ("import sys; from batch.cli.pull import listen_command; "
                  "listen_command(sys.argv[2:])")
        args = ["--port", str(port), "--ledger", str(ledger_path), "--on-finalized",
                "pull-reports", "--out", str(out)]
        proc = subprocess.Popen([sys.executable, "-c", script, "--", *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_sync(lambda: _listening(port, proc))

            async def finalize() -> None:
                creds = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
                async with Client(sandbox.url, credentials=creds, rate=500) as client:
                    await client.set_status(await create(client, 9), "finalized")

            anyio.run(finalize)
            wait_sync(lambda: len(reports(out)) == 1)
            proc.send_signal(signal.SIGINT)
            said, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert "stopped: " in err and "1 report downloaded" in err
        assert err.count("listening") == 1
        assert said == (  # the data: where the sender posts
            f"webhook URL for the sender: http://127.0.0.1:{port}/hooks/$EMG_WEBHOOK_TOKEN\n")
        assert TOKEN not in err + said  # the operator set it: never echoed
        with Ledger.open(ledger_path, create=False) as ledger:
            assert any(e["status"] == "finalized" for e in ledger.events())


def _listening(port: int, proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None, "the listener exited"
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_sync(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_generated_url_is_printed_once_and_takes_events(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(advance_after=0)) as sandbox:
        env = {**os.environ, "EMG_HOST": sandbox.url, "EMG_USERNAME": DEFAULT_USER,
               "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": ""}
        env.pop("EMG_WEBHOOK_TOKEN", None)
        env.pop("EMG_WEBHOOK_SECRET", None)
        script = ("import sys; from batch.cli.pull import listen_command; "
                  "listen_command(sys.argv[2:])")
        ledger_path = tmp_path / "events.sqlite"
        proc = subprocess.Popen(
            [sys.executable, "-c", script, "--", "--port", "0", "--ledger", str(ledger_path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None and proc.stdout is not None
            lines = [proc.stderr.readline() for _ in range(2)]
            url = proc.stdout.readline().split("webhook URL for the sender: ", 1)[1].strip()
            assert lines[0].startswith("listening for webhooks at http://127.0.0.1:")
            assert "/hooks/" in url and "EMG_WEBHOOK_TOKEN" in lines[1]

            async def send() -> list[int]:
                body = {"case_name": "EMG100000001", "status": "finalized"}
                guess = url.rsplit("/", 1)[0] + "/guess-" + "x" * 30
                async with aiohttp.ClientSession() as s, s.post(url, json=body) as ok, \
                        s.post(guess, json=body) as wrong:
                    return [ok.status, wrong.status]

            assert anyio.run(send) == [200, 404]
            proc.send_signal(signal.SIGINT)
            _, rest = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, rest
        token = url.rsplit("/", 1)[1]
        assert token not in rest and "listening" not in rest  # printed once, at start
        assert "1 event (" in rest and "1 refused" in rest
        with Ledger.open(ledger_path, create=False) as ledger:
            assert [e["case_name"] for e in ledger.events()] == ["EMG100000001"]
            assert token.encode() not in ledger_path.read_bytes()


def test_show_events_lists_the_failed_ones(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from batch.cli.pull import listen_command

    path = tmp_path / "events.sqlite"
    with Ledger.open(path) as ledger:
        for n, case in enumerate(("EMG100000001", "EMG100000002", "EMG100000003")):
            ledger.add_event(f"k{n}", case, {"status": "finalized", "status_change_date": "D"})
        ledger.mark_events_handled("EMG100000001", 1)
        ledger.record_event_failure("EMG100000002", 2, attempts=5, error="Forbidden (HTTP 403)",
                                    final=True)
    result = CliRunner().invoke(listen_command, ["--ledger", str(path), "--show-events"])
    assert result.exit_code == 0, result.output
    assert "events: 1 handled, 1 pending, 1 failed" in result.output
    assert ("failed: EMG100000002 finalized (D) after 5 attempts: Forbidden (HTTP 403)"
            in result.output)
    result = CliRunner().invoke(listen_command, ["--ledger", str(path)])
    assert result.exit_code == 2 and "--port is required" in result.output


def test_a_secret_set_says_that_only_a_relay_can_sign(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(advance_after=0)) as sandbox:
        env = {**os.environ, "EMG_HOST": sandbox.url, "EMG_USERNAME": DEFAULT_USER,
               "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "", "EMG_WEBHOOK_TOKEN": TOKEN,
               "EMG_WEBHOOK_SECRET": "relay-secret-0123456789"}
        script = ("import sys; from batch.cli.pull import listen_command; "
                  "listen_command(sys.argv[2:])")
        proc = subprocess.Popen([sys.executable, "-c", script, "--", "--port", "0", "--ledger",
                                 str(tmp_path / "events.sqlite")], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            proc.stdout.readline()  # bound
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "only a relay of your own can sign, Emedgene's sender cannot" in err
    assert "relay-secret" not in err
