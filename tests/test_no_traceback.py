"""Inputs that once ended in a traceback: each is now one clear line and an exit code."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batch.cli import main
from batch.sandbox import SandboxConfig, SandboxThread, demo_fixture_path

ROOT = Path(__file__).resolve().parents[1]
TOKEN_ERROR = ("Error: EMG_TOKEN holds a line break, a space or another control character: "
               "set it to the token alone (e.g. export EMG_TOKEN=\"$(tr -d '\\r\\n' < "
               "token.txt)\")")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with SandboxThread(SandboxConfig(fixture=demo_fixture_path(), advance_after=0)) as running:
        yield running.url


def invoke(*args: str, **env: str) -> Result:
    base = {"EMG_HOST": "", "EMG_TOKEN": "", "EMG_USERNAME": "", "EMG_PASSWORD": ""}
    return CliRunner().invoke(main, list(args), env={**base, **env}, catch_exceptions=False)


@pytest.mark.parametrize("command", [["doctor"], ["run", "MANIFEST"],
                                     ["pull", "info", "--cases", "EMG1", "--out", "OUT"]])
def test_a_token_with_a_line_break(command: list[str], tmp_path: Path, url: str) -> None:
    manifest = shutil.copy(ROOT / "inputs" / "example.csv", tmp_path / "m.csv")
    args = [str(manifest) if a == "MANIFEST" else str(tmp_path / "i.csv") if a == "OUT" else a
            for a in command]
    result = invoke(*args, EMG_HOST=url, EMG_TOKEN="abc\ndef")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == TOKEN_ERROR
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


def test_a_token_with_a_trailing_newline_is_the_token(url: str) -> None:
    result = invoke("doctor", EMG_HOST=url, EMG_TOKEN="not-a-token\n")
    assert "EMG_TOKEN holds" not in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(("content", "message"), [
    ("{bad", "bad.json: not a JSON file (Expecting property name enclosed in double quotes: "
             "line 1 column 2 (char 1))"),
    ("[1, 2]", 'bad.json: a fixture is a JSON object ({"users": [...], ...}), not an array'),
    ('{"users": 5}', "bad.json: a value of the wrong type (TypeError: 'int' object is not "
                     "iterable); see conformance/official-cli-36/fixture.json for the format"),
    ('{"users": [{"id": "x", "email": "a@b.org"}]}',
     "bad.json: a value of the wrong type (ValueError: invalid literal for int() with base 10: "
     "'x'); see conformance/official-cli-36/fixture.json for the format"),
    ('{"users": [{"id": 1, "email": 3}]}',
     "bad.json: a value of the wrong type (TypeError: user 1: email must be a string); see "
     "conformance/official-cli-36/fixture.json for the format"),
    ("Family Id,Case Type\nF1,Exome\n", "bad.json: not a JSON file (Expecting value: line 1 "
                                       "column 1 (char 0))"),
])
def test_a_fixture_that_is_not_one(content: str, message: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.json").write_text(content, encoding="utf-8")
    result = invoke("sandbox", "--port", "0", "--fixture", "bad.json")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: Invalid value for '--fixture': {message}"


def test_a_record_file_in_a_missing_folder(tmp_path: Path) -> None:
    record = tmp_path / "no" / "calls.jsonl"
    result = invoke("sandbox", "--port", "0", "--record", str(record))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--record': {record}: its folder {record.parent} does not "
        "exist")


def test_doctor_with_a_wrong_password_says_the_login_was_refused(url: str) -> None:
    result = invoke("doctor", EMG_HOST=url, EMG_USERNAME="sandbox@example.com",
                    EMG_PASSWORD="wrong")
    assert result.exit_code == 1
    last = result.stdout.splitlines()[-1]
    assert last.startswith(f"{url}: the login was refused, so nothing else could be checked (")
    assert "NOT compatible" not in result.stdout
