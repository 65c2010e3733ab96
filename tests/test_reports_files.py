"""Pulled reports on disk: injective names, checked case names, modes whatever the umask, no
symbolic link followed, one ``.part`` per download. Against a real loopback server."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from batch.errors import PermanentError
from batch.outputs import atomic_path, make_dir, write_table
from batch.pull import pull_case_reports, report_path, safe_name
from batch.pull.paths import LONG, case_folder, component, save_report
from tests.transport_server import LOGIN, Fake, client, serve, token_answer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


async def reports_server(request: web.Request) -> web.Response:
    """Every case is finalized with reports ``(pdf, 7)`` and ``(pdf, a_b)``; a report's
    content names its case, so a report filed under another case shows."""
    if request.path == LOGIN:
        return token_answer()
    parts = [unquote(p) for p in request.raw_path.split("?")[0].split("/") if p]
    if parts[:3] == ["api", "test", "v2"]:
        return web.Response(body=f"%PDF report {parts[5]}-{parts[6]} of {parts[3]}".encode())
    return web.json_response({"name": parts[2], "status": "finalized",
                              "reports": [{"type": "pdf", "id": 7}, {"type": "pdf",
                                                                      "id": "a_b"}]})


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("umask", [0o000, 0o777], indirect=True)
async def test_folders_are_0700_and_files_0600_whatever_the_umask(
        tmp_path: Path, umask: int) -> None:
    out = tmp_path / "new" / "reports"
    async with serve(reports_server) as fake, client(fake.url) as c:
        result = await pull_case_reports(c, "EMG1", out=out)
    assert result.error is None and result.downloaded == 2
    assert [mode(p) for p in (tmp_path / "new", out, out / "EMG1")] == [0o700] * 3
    assert [mode(p) for p in files(out)] == [0o600, 0o600]
    table = write_table([{"Case": "EMG1"}], tmp_path / "t" / "cases.csv", columns=["Case"])
    assert (mode(tmp_path / "t"), mode(table)) == (0o700, 0o600)


@pytest.mark.parametrize("umask", [0o000, 0o777], indirect=True)
def test_an_output_a_writer_made_anew_is_0600_whatever_the_umask(
        tmp_path: Path, umask: int) -> None:
    with atomic_path(tmp_path / "x.csv") as tmp:
        tmp.unlink()  # as a library that writes a new file under the name would
        tmp.write_text("Case\nEMG1\n")
        tmp.chmod(0o666)
    assert mode(tmp_path / "x.csv") == 0o600


def test_make_dir_leaves_existing_folders_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    make_dir(tmp_path / "a" / "b")
    assert (mode(tmp_path), mode(tmp_path / "a"), mode(tmp_path / "a" / "b")) == (
        0o755, 0o700, 0o700)


async def test_names_that_sanitising_used_to_merge_get_folders_of_their_own(
        tmp_path: Path) -> None:
    cases = ["EMG1_x", "EMG1 x", "EMG1~20x", "EMG1.x", "emg1_x", "EMG1%2Fx", "Ärzte"]
    async with serve(reports_server) as fake, client(fake.url, concurrency=8) as c:
        results = await asyncio.gather(*(pull_case_reports(c, case, out=tmp_path)
                                          for case in cases))
    assert [(r.error, r.downloaded, r.present) for r in results] == [(None, 2, 0)] * len(cases)
    folders = {p.parent for p in files(tmp_path)}
    assert len(folders) == len(cases)
    for case, result in zip(cases, results, strict=True):
        for path in result.files:
            assert path.read_text().endswith(f"of {case}")  # each case's own reports
    assert not [p for p in files(tmp_path) if p.suffix == ".part"]


async def test_a_case_name_with_a_slash_is_refused_and_its_twin_still_pulled(
        tmp_path: Path) -> None:
    async with serve(reports_server) as fake, client(fake.url) as c:
        slashed, plain = await asyncio.gather(
            pull_case_reports(c, "EMG1/x", out=tmp_path),
            pull_case_reports(c, "EMG1_x", out=tmp_path))
    assert slashed.error is not None and "slash" in slashed.error
    assert "'EMG1/x'" in slashed.error
    assert (plain.error, plain.downloaded) == (None, 2)  # not "already present"
    assert all(p.read_text().endswith("of EMG1_x") for p in files(tmp_path))


@pytest.mark.parametrize("name", ["..", ".", "", "EMG1\n", "EMG\x001", "a\\b", "EMG\u202e1"])
async def test_a_case_name_that_would_change_the_route_sends_nothing(
        tmp_path: Path, name: str) -> None:
    async with serve(reports_server) as fake, client(fake.url) as c:
        fetched = await pull_case_reports(c, name, out=tmp_path / "a")
        given_object = await pull_case_reports(
            c, name, out=tmp_path / "b",
            case_object={"status": "finalized", "reports": [{"type": "pdf", "id": 7}]})
        with pytest.raises(PermanentError, match="refusing the name"):
            await c.get_case(name)
    assert fake.seen == []  # not even a login: the name was refused first
    for result in (fetched, given_object):
        assert result.error is not None and "refusing the name" in result.error
        assert "\n" not in result.error
    assert files(tmp_path) == []


async def test_a_symlinked_case_folder_is_not_followed(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "EMG1").symlink_to(elsewhere, target_is_directory=True)
    async with serve(reports_server) as fake, client(fake.url) as c:
        linked, other = await asyncio.gather(pull_case_reports(c, "EMG1", out=out),
                                             pull_case_reports(c, "EMG2", out=out))
    assert linked.error is not None and "symbolic link" in linked.error
    assert list(elsewhere.iterdir()) == []
    assert (other.error, other.downloaded) == (None, 2)


async def test_a_symlinked_report_file_is_neither_present_nor_overwritten(
        tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "out" / "EMG1").mkdir(parents=True)
    report_path(tmp_path / "out", "EMG1", "pdf", 7).symlink_to(target)
    async with serve(reports_server) as fake, client(fake.url) as c:
        result = await pull_case_reports(c, "EMG1", out=tmp_path / "out")
    assert result.error is not None and "symbolic link" in result.error
    assert result.present == 0
    assert target.read_text() == "keep me"


async def test_concurrent_downloads_of_one_report_use_parts_of_their_own(
        tmp_path: Path) -> None:
    dest = report_path(tmp_path, "EMG1", "pdf", 7)
    case_folder(tmp_path, "EMG1")
    async with serve(reports_server) as fake, client(fake.url) as c:
        await asyncio.gather(*(save_report(c, "EMG1", "pdf", 7, dest) for _ in range(8)))
    assert dest.read_text() == "%PDF report pdf-7 of EMG1"
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]


def test_only_the_parts_of_gone_processes_are_cleaned(tmp_path: Path) -> None:
    folder = case_folder(tmp_path, "EMG1")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = [f"pdf-7.pdf.{int(gone.stdout)}-0123abcd.part", "pdf-8.pdf.part"]
    live = f"pdf-9.pdf.{os.getpid()}-89abcdef.part"  # this process: a download in flight
    for name in (*stale, live):
        (folder / name).write_bytes(b"half")
    case_folder(tmp_path, "EMG1")
    assert [p.name for p in folder.iterdir()] == [live]


async def test_a_failed_download_leaves_no_part(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == LOGIN:
            return token_answer()
        return web.Response(status=409, text="not finalized")

    dest = report_path(tmp_path, "EMG1", "pdf", 7)
    case_folder(tmp_path, "EMG1")
    fake: Fake
    async with serve(handler) as fake, client(fake.url) as c:
        with pytest.raises(PermanentError):
            await save_report(c, "EMG1", "pdf", 7, dest)
    assert list(dest.parent.iterdir()) == []
    assert fake.count("GET") == 1


def test_report_names_keep_emedgene_names_and_keep_type_and_id_apart(tmp_path: Path) -> None:
    assert report_path(tmp_path, "EMG100000001", "pdf", 7) == (
        tmp_path / "EMG100000001" / "pdf-7.pdf")
    assert report_path(tmp_path, "EMG1", "vcf", 8).name == "vcf-8.bin"
    names = {report_path(tmp_path, "EMG1", t, i).name
             for t, i in [("pdf", "a/b"), ("pdf", "a_b"), ("pdf", "a b"), ("a-b", "c"),
                          ("a", "b-c"), ("pdf", "a~2Fb")]}
    assert len(names) == 6
    assert all("/" not in n for n in names)


@given(st.text(max_size=300), st.text(max_size=300))
def test_file_name_components_are_injective_and_safe(a: str, b: str) -> None:
    ca, cb = component(a), component(b)
    assert (ca == cb) == (a == b)
    for c in (ca, cb):
        assert c not in ("", ".", "..") and "/" not in c and "\x00" not in c
        assert not c.startswith(".") and not c.endswith(".")
        assert len(c) <= LONG
    assert safe_name(a) == ca


def test_device_names_and_dots_are_escaped() -> None:
    assert component("CON") == "~43ON"
    assert component("..") == "~2E~2E"
    assert component("x.") == "x~2E"
    assert component("") == "~"
