"""The report files of ``pull finalized``: what each case's folder holds is listed in
``cases.xlsx`` and ``cases.csv`` whichever pull downloaded it (a rerun, a narrower
``--reports``, a case that fails this time), with size and time, and the counts in words."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import openpyxl
import polars as pl
import pytest
from click.testing import CliRunner

from batch.api import Client, Credentials
from batch.cli.pull import pull_group
from batch.errors import OutputError, UnsafePath
from batch.pull import FinalizedOptions, parse_since, pull_finalized
from batch.pull.finalized import in_words
from batch.pull.paths import files_on_disk
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, SandboxThread
from tests.cases import create_minimal
from tests.pull_env import Env, sandbox_env

ENV = {"EMG_USERNAME": DEFAULT_USER, "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "",
       "EMG_HOST": ""}
CASES_HEADER = ["Case", "Status", "Status Change Date", "Created", "Delivered Date", "Reports",
                "Report Files", "Report Bytes", "Last Downloaded At", "Downloaded",
                "Already Present", "Error"]


def sheet_rows(path: Path, sheet: str) -> list[dict[str, Any]]:
    """The rows of one sheet of a workbook, by header."""
    book = openpyxl.load_workbook(path)
    rows = [[c.value for c in row] for row in book[sheet].iter_rows()]
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def listed(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What cases.xlsx says each case has: (case, report files, bytes, last downloaded) per
    case, and (case, file, bytes, downloaded at) per file."""
    cases = [(r["Case"], r["Report Files"], r["Report Bytes"], r["Last Downloaded At"])
             for r in sheet_rows(path, "Cases")]
    files = [(r["Case"], r["File"], r["Bytes"], r["Downloaded At"])
             for r in sheet_rows(path, "Files")]
    return cases, files


# -- end to end: the command twice ------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig(advance_after=0)) as thread:
        yield thread


def create_cases(url: str, count: int) -> list[str]:
    async def go() -> list[str]:
        creds = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
        async with Client(url, credentials=creds, rate=500) as client:
            names = [await create_minimal(client, f"FILES-{n:04d}") for n in range(count)]
            for name in names:
                await client.set_status(name, "finalized")
            return names

    return anyio.run(go)


def test_a_rerun_lists_the_same_files_as_the_pull_that_downloaded_them(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    names = create_cases(sandbox.url, 2)
    args = ["finalized", "--host", sandbox.url, "--since", "24h", "--reports", "pdf,json",
            "--out", str(tmp_path), "--rate", "500"]
    first = CliRunner().invoke(pull_group, args, env=ENV, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert [c.value for c in openpyxl.load_workbook(tmp_path / "cases.xlsx")["Cases"][1]] == (
        CASES_HEADER)
    cases, files = listed(tmp_path / "cases.xlsx")
    pdf = tmp_path / names[0] / "pdf-700001.pdf"
    assert files[:2] == [
        (names[0], f"{names[0]}/json-700002.json",
         (tmp_path / names[0] / "json-700002.json").stat().st_size, files[0][3]),
        (names[0], f"{names[0]}/pdf-700001.pdf", pdf.stat().st_size, files[1][3]),
    ]
    assert len(files) == 4 and all(isinstance(f[3], datetime) for f in files)
    assert cases[0] == (names[0], f"{names[0]}/json-700002.json; {names[0]}/pdf-700001.pdf",
                        files[0][2] + files[1][2], max(files[0][3], files[1][3]))
    words = [r["Reports"] for r in sheet_rows(tmp_path / "cases.xlsx", "Cases")]
    assert words == ["2 reports on disk, downloaded by this pull"] * 2

    again = CliRunner().invoke(pull_group, args, env=ENV, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "downloaded 0 reports, already present 4" in again.output
    assert listed(tmp_path / "cases.xlsx") == (cases, files)
    rows = sheet_rows(tmp_path / "cases.xlsx", "Cases")
    assert [(r["Reports"], r["Downloaded"], r["Already Present"]) for r in rows] == [
        ("2 reports on disk, all there before this pull", 0, 2)] * 2
    csv = pl.read_csv(tmp_path / "cases.csv")
    assert csv.columns == CASES_HEADER
    assert csv["Report Files"].to_list() == [c[1] for c in cases]
    assert csv["Report Bytes"].to_list() == [c[2] for c in cases]
    assert csv["Last Downloaded At"].to_list() == [
        c[3].strftime("%Y-%m-%dT%H:%M:%SZ") for c in cases]


# -- the library: what the folder holds is the truth ------------------------------------------


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with sandbox_env() as running:
        yield running


def options(out: Path, **kw: Any) -> FinalizedOptions:
    return FinalizedOptions(out=out, since=parse_since("1h"), **kw)


async def test_a_narrower_rerun_still_lists_every_file_on_disk(env: Env, tmp_path: Path) -> None:
    names = await env.create(1, finalize=1, prefix="DISK")
    await pull_finalized(env.client, options(tmp_path, report_types=("all",)))
    again = await pull_finalized(env.client, options(tmp_path, report_types=("pdf",)))
    case = again.cases[0]
    assert [f.name for f in case.files] == ["pdf-700001.pdf"]  # what this pull asked for
    assert [f.path.name for f in case.on_disk] == ["json-700002.json", "pdf-700001.pdf"]
    row = pl.read_csv(again.csv).row(0, named=True)
    assert row["Report Files"] == f"{names[0]}/json-700002.json; {names[0]}/pdf-700001.pdf"
    assert row["Reports"] == "2 reports on disk, all there before this pull"


async def test_a_case_that_fails_now_still_lists_its_files(env: Env, tmp_path: Path) -> None:
    names = await env.create(2, finalize=2, prefix="DISK")
    await pull_finalized(env.client, options(tmp_path))
    await env.advance(names[1], "reanalysis")  # reopened: the listing no longer has it
    again = await pull_finalized(env.client, FinalizedOptions(
        out=tmp_path, statuses=("finalized", "reanalysis"), since=parse_since("1h")))
    rows = {r["Case"]: r for r in sheet_rows(again.xlsx, "Cases")}
    assert rows[names[1]]["Error"].startswith("case is reanalysis, not finalized")
    assert rows[names[1]]["Report Files"] == f"{names[1]}/pdf-700003.pdf"
    assert rows[names[1]]["Reports"] == "1 report on disk, there before this pull"
    assert [r["File"] for r in sheet_rows(again.xlsx, "Files")] == [
        f"{names[0]}/pdf-700001.pdf", f"{names[1]}/pdf-700003.pdf"]


async def test_a_removed_report_is_downloaded_and_said_so(env: Env, tmp_path: Path) -> None:
    names = await env.create(1, finalize=1, prefix="DISK")
    await pull_finalized(env.client, options(tmp_path, report_types=("all",)))
    (tmp_path / names[0] / "pdf-700001.pdf").unlink()
    again = await pull_finalized(env.client, options(tmp_path, report_types=("all",)))
    row = sheet_rows(again.xlsx, "Cases")[0]
    assert row["Reports"] == "2 reports on disk: 1 downloaded by this pull, 1 there before"
    assert (row["Downloaded"], row["Already Present"]) == (1, 1)


async def test_a_case_with_nothing_on_disk(env: Env, tmp_path: Path) -> None:
    names = await env.create(1, finalize=1, prefix="DISK")
    await env.advance(names[0], "reanalysis")
    result = await pull_finalized(env.client, FinalizedOptions(
        out=tmp_path, statuses=("reanalysis",), since=parse_since("1h")))
    row = sheet_rows(result.xlsx, "Cases")[0]
    assert (row["Reports"], row["Report Files"], row["Report Bytes"]) == (
        "no report on disk", None, None)
    assert sheet_rows(result.xlsx, "Files") == []
    assert pl.read_csv(result.csv)["Report Files"].to_list() == [None]


# -- files_on_disk ----------------------------------------------------------------------------


def test_files_on_disk_lists_complete_files_only(tmp_path: Path) -> None:
    folder = tmp_path / "EMG1"
    folder.mkdir()
    (folder / "pdf-1.pdf").write_bytes(b"%PDF-12345")
    (folder / "json-2.json").write_bytes(b"{}")
    (folder / "pdf-3.pdf.4242-0123abcd.part").write_bytes(b"%PDF-half")  # a download going on
    (folder / "sub").mkdir()
    (folder / "link.pdf").symlink_to(folder / "pdf-1.pdf")
    found = files_on_disk(tmp_path, "EMG1")
    assert [(f.path, f.size) for f in found] == [(folder / "json-2.json", 2),
                                                 (folder / "pdf-1.pdf", 10)]
    stamp = datetime.fromtimestamp(int(os.stat(folder / "pdf-1.pdf").st_mtime), UTC)
    assert found[1].modified == stamp.replace(tzinfo=None) and found[1].modified.tzinfo is None
    assert files_on_disk(tmp_path, "EMG2") == []  # never pulled: no folder


def test_files_on_disk_follows_no_link_and_names_what_it_cannot_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pdf-1.pdf").write_bytes(b"%PDF-")
    out = tmp_path / "out"
    out.mkdir()
    (out / "EMG1").symlink_to(elsewhere)
    with pytest.raises(UnsafePath, match="symbolic link"):
        files_on_disk(out, "EMG1")
    (out / "EMG2").write_bytes(b"not a folder")
    with pytest.raises(UnsafePath, match="not a folder"):
        files_on_disk(out, "EMG2")
    (out / "EMG3").mkdir(mode=0o000)
    if os.geteuid() != 0:  # root reads any folder
        with pytest.raises(OutputError, match=r"cannot read .*EMG3"):
            files_on_disk(out, "EMG3")


async def test_a_linked_case_folder_is_that_cases_error(env: Env, tmp_path: Path) -> None:
    names = await env.create(1, finalize=1, prefix="DISK")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / names[0]).symlink_to(elsewhere)
    result = await pull_finalized(env.client, options(out))
    assert result.cases[0].error is not None and "symbolic link" in result.cases[0].error
    assert result.cases[0].on_disk == [] and list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(("on_disk", "downloaded", "words"), [
    (0, 0, "no report on disk"),
    (1, 0, "1 report on disk, there before this pull"),
    (1, 1, "1 report on disk, downloaded by this pull"),
    (3, 0, "3 reports on disk, all there before this pull"),
    (3, 3, "3 reports on disk, downloaded by this pull"),
    (3, 2, "3 reports on disk: 2 downloaded by this pull, 1 there before"),
])
def test_counts_in_words(on_disk: int, downloaded: int, words: str) -> None:
    assert in_words(on_disk, downloaded) == words
