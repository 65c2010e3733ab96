"""Tenants by name (docs/tenants.md): the config file, which tenant a command uses, the order
settings resolve in (option > environment > tenant file > default), the refusals, and a
password command run without a shell; end to end against a sandbox on a loopback port."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batch.cli import main
from batch.errors import CredentialError, UsageError
from batch.jobs import config_file, load_tenants, pick_tenant, run_password_command
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, SandboxThread
from tests.cli_sandbox import api_requests
from tests.manifests import write_manifest

PY = shlex.quote(sys.executable)
#: A password command that prints the sandbox password (and a second line, never read).
PASSWORD_COMMAND = f"{PY} -c \"print('{DEFAULT_PASSWORD}'); print('second line')\""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig(advance_after=0)) as thread:
        yield thread


def write_config(folder: Path, text: str, mode: int = 0o600) -> Path:
    """``folder/emg-batch/config.toml`` holding *text*, with *mode*."""
    path = folder / "emg-batch" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def two_tenants(url: str, *, default: str = "test") -> str:
    """A config with tenant ``test`` (the sandbox at *url*) and ``prod`` (a closed port)."""
    return (f'default_tenant = "{default}"\n\n'
            f'[tenants.test]\nhost = "{url}"\nusername = "{DEFAULT_USER}"\n'
            f"password_command = '''{PASSWORD_COMMAND}'''\nrate = 40\nconcurrency = 3\n\n"
            '[tenants.prod]\nhost = "http://127.0.0.1:9"\nusername = "prod@lab.org"\n')


def invoke(config: Path, *args: str, **env: str) -> Result:
    """The CLI with only the environment given (no EMG_* of the suite), *config*'s folder as
    ``XDG_CONFIG_HOME``."""
    base = {"XDG_CONFIG_HOME": str(config.parent.parent), "EMG_HOST": "", "EMG_USERNAME": "",
            "EMG_PASSWORD": "", "EMG_TOKEN": "", "EMG_TENANT": ""}
    return CliRunner().invoke(main, list(args), env={**base, **env}, catch_exceptions=False)


def settings_of(result: Result) -> dict[str, tuple[str, str]]:
    """``doctor --json``'s settings: name → (value, origin)."""
    assert result.exit_code == 0, result.output
    return {s["name"]: (s["value"], s["origin"]) for s in json.loads(result.stdout)["settings"]}


# -- the file --------------------------------------------------------------------------------


def test_config_file_honours_xdg_config_home(tmp_path: Path) -> None:
    app = tmp_path / "app"
    assert config_file({"XDG_CONFIG_HOME": str(tmp_path)}, app) == \
        tmp_path / "emg-batch" / "config.toml"
    assert config_file({}, app) == app / "config.toml"
    assert config_file({"XDG_CONFIG_HOME": "relative"}, app) == app / "config.toml"


def test_a_tenant_file_is_read(tmp_path: Path) -> None:
    path = write_config(tmp_path, two_tenants("http://127.0.0.1:8765"))
    loaded = load_tenants(path)
    assert loaded.default == "test" and sorted(loaded.tenants) == ["prod", "test"]
    test = loaded.tenants["test"]
    assert (test.host, test.username, test.rate, test.concurrency) == (
        "http://127.0.0.1:8765", DEFAULT_USER, 40.0, 3)
    assert PASSWORD_COMMAND not in repr(test)


@pytest.mark.parametrize(("text", "message"), [
    ('[tenants.test]\nhost = "https://a.emg.illumina.com"\npassword = "hunter2"\n',
     ":3: tenant 'test': a password is never read from this file: use password_command"),
    ('password = "hunter2"\n', ":1: a password is never read from this file"),
    ('[tenants.test]\nhost = "https://a.emg.illumina.com\n',
     ":2: not valid TOML: Illegal character '\\n' (column 35)"),
    ('[tenants.test]\nhost = "https://a.emg.illumina.com"\n[tenants.test]\n',
     ":3: not valid TOML: Cannot declare ('tenants', 'test') twice"),
    ('default_tenant = "prod"\n[tenants.test]\nhost = "https://a.emg.illumina.com"\n',
     ":1: default_tenant = 'prod' names no tenant (known: test)"),
    ('[tenants.test]\nusername = "me@lab.org"\n',
     ":1: tenant 'test': has no host"),
    ('[tenants.test]\nhost = "http://lab.example.org"\n',
     ":2: tenant 'test': host: refusing plain HTTP to lab.example.org"),
    ('[tenants.test]\nhost = "https://a.emg.illumina.com"\nrate = 0\n',
     ":3: tenant 'test': rate: must be a number of requests per second, at least 0.01"),
    ('[tenants.test]\nhost = "https://a.emg.illumina.com"\nconcurrency = 1000\n',
     ":3: tenant 'test': concurrency: must be a whole number from 1 to 256"),
    ('[tenants.test]\nhost = "https://a.emg.illumina.com"\nuser = "me"\n',
     ":3: tenant 'test': unknown setting 'user' (known: host, username, password_command"),
    ('[tenants.test]\nhost = "https://a.emg.illumina.com"\npassword_command = "pass \'x"\n',
     ":3: tenant 'test': password_command: cannot be split into words (No closing quotation)"),
])
def test_a_file_that_cannot_be_used_is_refused_naming_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        load_tenants(path)
    assert str(caught.value).startswith(f"{path}{message}"), str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_readable_file_is_refused_only_while_it_holds_a_password_command(
    tmp_path: Path
) -> None:
    names_only = '[tenants.test]\nhost = "https://a.emg.illumina.com"\nusername = "me@lab.org"\n'
    assert load_tenants(write_config(tmp_path, names_only, 0o644)).tenants["test"].username
    for mode in (0o640, 0o604, 0o620):
        path = write_config(tmp_path, f"{names_only}password_command = 'pass show emg'\n", mode)
        with pytest.raises(UsageError) as caught:
            load_tenants(path)
        assert str(caught.value) == (
            f"{path} can be read or changed by others (mode {mode:04o}) and holds a "
            f"password_command: run chmod 600 {path}")
    path.chmod(0o600)
    assert load_tenants(path).tenants["test"].password_command == "pass show emg"


# -- which tenant ----------------------------------------------------------------------------


def test_the_tenant_is_picked_by_option_then_environment_then_default(tmp_path: Path) -> None:
    path = write_config(tmp_path, two_tenants("http://127.0.0.1:8765", default="prod"))
    env = {"EMG_TENANT": "test"}
    assert pick_tenant(path, {}).tenant.name == "prod"  # type: ignore[union-attr]
    assert pick_tenant(path, env).tenant.name == "test"  # type: ignore[union-attr]
    picked = pick_tenant(path, {"EMG_TENANT": "prod"}, option="test")
    assert (picked.tenant.name, picked.origin) == ("test", f"--tenant in {path}")  # type: ignore[union-attr]
    # a server named otherwise leaves the default tenant (and the file) alone
    assert pick_tenant(path, {"EMG_HOST": "https://a.emg.illumina.com"}).tenant is None
    assert pick_tenant(path, {}, host_option="--sandbox").tenant is None


def test_a_server_named_twice_is_refused_or_noted(tmp_path: Path) -> None:
    path = write_config(tmp_path, two_tenants("http://127.0.0.1:8765"))
    with pytest.raises(UsageError, match="--tenant and --host both name the server"):
        pick_tenant(path, {}, option="test", host_option="--host")
    with pytest.raises(UsageError, match=r"^EMG_HOST \(https://b.emg.illumina.com\) and "
                                         r"tenant test .* name different servers"):
        pick_tenant(path, {"EMG_HOST": "https://b.emg.illumina.com"}, option="test")
    same = pick_tenant(path, {"EMG_HOST": "http://127.0.0.1:8765/"}, option="test")
    assert same.tenant is not None
    noted = pick_tenant(path, {"EMG_TENANT": "test"}, host_option="--sandbox")
    assert noted.tenant is None
    assert noted.notes == ("note: EMG_TENANT=test not used: --sandbox names the server",)


def test_an_unknown_tenant_lists_the_known_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path, two_tenants("http://127.0.0.1:8765"))
    with pytest.raises(UsageError) as caught:
        pick_tenant(path, {}, option="staging")
    assert str(caught.value) == f"unknown tenant 'staging' (--tenant): {path} names: prod, test"
    missing = tmp_path / "none" / "config.toml"
    with pytest.raises(UsageError, match=r"there is no .*config.toml; name it there in a "
                                         r"\[tenants.staging\] table"):
        pick_tenant(missing, {"EMG_TENANT": "staging"})


# -- the password command --------------------------------------------------------------------


def test_the_password_command_runs_without_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    command = f"echo 'pw  with spaces' ; touch {shlex.quote(str(marker))} $HOME"
    password = run_password_command(command, label="password_command of tenant test")
    assert password == f"pw  with spaces ; touch {marker} $HOME"  # words, not shell syntax
    assert not marker.exists()
    assert run_password_command(PASSWORD_COMMAND, label="x") == DEFAULT_PASSWORD


@pytest.mark.parametrize(("command", "message"), [
    (f"{PY} -c \"print('s3cret'); raise SystemExit(4)\"", "t failed (exit code 4)"),
    (f"{PY} -c \"print(); print('s3cret')\"", "t: printed no password on its first line"),
    (f"{PY} -c \"print('s3cret' * 20000)\"", "t: printed more than 64 KB"),
    (f"{PY} -c \"import time; print('s3cret', flush=True); time.sleep(30)\"",
     "t: no answer in 0.5 s"),
    (f"{PY} -c \"import sys; sys.stdout.buffer.write(b's3cret\\xff')\"",
     "t: printed something that is not UTF-8 text"),
])
def test_a_failing_password_command_is_one_line_without_its_output(
    command: str, message: str
) -> None:
    with pytest.raises(CredentialError) as caught:
        run_password_command(command, label="t", timeout=0.5 if "sleep" in command else 20)
    assert str(caught.value) == message
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(("command", "message"), [
    ("no-such-command-anywhere --flag", "t: no such command: no-such-command-anywhere"),
    ("   ", "t: names no command"),
])
def test_a_password_command_that_cannot_start_is_a_usage_error(
    command: str, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        run_password_command(command, label="t")
    assert str(caught.value) == message


# -- end to end ------------------------------------------------------------------------------


def test_run_against_a_sandbox_picked_by_tenant(sandbox: SandboxThread, tmp_path: Path) -> None:
    config = write_config(tmp_path / "xdg", two_tenants(sandbox.url, default="prod"))
    manifest = write_manifest(tmp_path / "m.csv", 2, prefix="TEN")
    result = invoke(config, "run", str(manifest), "--tenant", "test", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["created"], summary["host"]) == (2, sandbox.url)
    assert api_requests(sandbox)["POST /api/auth/v2/api_login"] == {"200": 1}  # its password
    status = invoke(config, "status", str(manifest))
    assert status.exit_code == 0
    assert (f"  settings: tenant test (from --tenant in {config}); host {sandbox.url} (from "
            f"tenant test); username {DEFAULT_USER} (from tenant test); password hidden (from "
            "password_command of tenant test); rate 40 (from tenant test); concurrency 3 "
            "(from tenant test)") in status.stdout.splitlines()
    assert "options: concurrency=3, max_failures=None" in status.stdout


def test_revert_finds_its_server_by_tenant_too(sandbox: SandboxThread, tmp_path: Path) -> None:
    config = write_config(tmp_path / "xdg", two_tenants(sandbox.url, default="prod"))
    manifest = write_manifest(tmp_path / "m.csv", 1, prefix="REV")
    assert invoke(config, "run", str(manifest), "--tenant", "test").exit_code == 0
    plan = invoke(config, "revert", str(manifest), "--dry-run", EMG_TENANT="test")
    assert plan.exit_code == 0, plan.output
    assert "Traceback" not in plan.output


def test_options_and_environment_win_over_the_tenant_file(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "xdg", two_tenants(sandbox.url, default="prod"))
    manifest = write_manifest(tmp_path / "m.csv", 1, prefix="ORD")
    result = invoke(config, "run", str(manifest), "--concurrency", "2", "--json",
                    EMG_TENANT="test", EMG_USERNAME=DEFAULT_USER, EMG_PASSWORD=DEFAULT_PASSWORD)
    assert result.exit_code == 0, result.output
    status = json.loads(invoke(config, "status", str(manifest), "--json").stdout)
    options = status["last_run"]["options"]
    assert options["concurrency"] == 2
    assert {s["name"]: (s["value"], s["origin"]) for s in options["settings"]} == {
        "tenant": ("test", f"EMG_TENANT in {config}"),
        "host": (sandbox.url, "tenant test"),
        "username": (DEFAULT_USER, "EMG_USERNAME"),
        "password": ("hidden", "EMG_PASSWORD"),
        "rate": ("40", "tenant test"),
        "concurrency": ("2", "--concurrency"),
    }


@pytest.mark.slow
def test_doctor_says_which_tenant_and_where_each_setting_came_from(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "xdg", two_tenants(sandbox.url))
    report = invoke(config, "doctor", "--json")
    assert json.loads(report.stdout)["tenant"] == "test"
    assert settings_of(report) == {
        "tenant": ("test", f"default_tenant in {config}"),
        "host": (sandbox.url, "tenant test"),
        "username": (DEFAULT_USER, "tenant test"),
        "password": ("hidden", "password_command of tenant test"),
        "rate": ("40", "tenant test"), "concurrency": ("3", "tenant test"),
    }
    text = invoke(config, "doctor")
    assert text.stdout.splitlines()[-8:-1] == [
        "settings:",
        f"  tenant       test (from default_tenant in {config})",
        f"  host         {sandbox.url} (from tenant test)",
        f"  username     {DEFAULT_USER} (from tenant test)",
        "  password     hidden (from password_command of tenant test)",
        "  rate         40 (from tenant test)",
        "  concurrency  3 (from tenant test)"]
    # the default tenant gives way to --host, and to EMG_HOST, whole (no username of its own)
    plain = invoke(config, "doctor", "--json", "--host", sandbox.url,
                   EMG_USERNAME=DEFAULT_USER, EMG_PASSWORD=DEFAULT_PASSWORD)
    assert settings_of(plain) == {"host": (sandbox.url, "--host"),
                                  "username": (DEFAULT_USER, "EMG_USERNAME"),
                                  "password": ("hidden", "EMG_PASSWORD")}


def test_refusals_exit_2_before_anything_is_sent(sandbox: SandboxThread, tmp_path: Path) -> None:
    config = write_config(tmp_path / "xdg", two_tenants(sandbox.url))
    before = api_requests(sandbox)
    unknown = invoke(config, "doctor", "--tenant", "staging")
    assert (unknown.exit_code, unknown.stderr) == (
        2, f"Error: unknown tenant 'staging' (--tenant): {config} names: prod, test\n")
    both = invoke(config, "pull", "info", "--cases", "EMG1", "--out", str(tmp_path / "i.csv"),
                  "--tenant", "test", "--host", sandbox.url)
    assert both.exit_code == 2
    assert "Error: --tenant and --host both name the server: give one of them" in both.stderr
    other = invoke(config, "doctor", "--tenant", "test", EMG_HOST="http://127.0.0.1:9")
    assert other.exit_code == 2 and "name different servers" in other.stderr
    write_config(tmp_path / "xdg", two_tenants(sandbox.url), mode=0o644)
    readable = invoke(config, "validate", str(write_manifest(tmp_path / "v.csv", 1)),
                      "--server")
    assert readable.exit_code == 2 and "chmod 600" in readable.stderr
    config.write_text("[tenants.test\n", encoding="utf-8")
    broken = invoke(config, "listen", "--port", "0", "--ledger", str(tmp_path / "e.sqlite"))
    assert broken.exit_code == 2
    assert broken.stderr.startswith(f"Error: {config}:1: not valid TOML: ")
    assert "Traceback" not in broken.output
    assert api_requests(sandbox) == before


def test_a_failing_password_command_exits_3_before_anything_is_sent(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    failing = f"{PY} -c \"print('s3cret'); raise SystemExit(1)\""
    config = write_config(tmp_path / "xdg", f'[tenants.test]\nhost = "{sandbox.url}"\n'
                          f"username = '{DEFAULT_USER}'\npassword_command = '''{failing}'''\n")
    before = api_requests(sandbox)
    result = invoke(config, "pull", "samples", "--samples", "S1", "--tenant", "test",
                    "--out", str(tmp_path / "s.csv"))
    assert result.exit_code == 3
    assert result.stderr == ("Error: password_command of tenant test failed (exit code 1)\n"
                             "Hint: run the command yourself to see what it says; nothing was "
                             "sent\n")
    assert api_requests(sandbox) == before
    # EMG_PASSWORD wins over the command: it is not run
    ok = invoke(config, "pull", "samples", "--samples", "S1", "--tenant", "test",
                "--out", str(tmp_path / "s.csv"), EMG_PASSWORD=DEFAULT_PASSWORD)
    assert ok.exit_code == 0, ok.output


def test_emg_tenant_gives_way_to_sandbox_with_a_note(tmp_path: Path) -> None:
    config = write_config(tmp_path / "xdg", two_tenants("http://127.0.0.1:9"))
    result = invoke(config, "doctor", "--sandbox", "--json", EMG_TENANT="prod")
    assert result.exit_code == 0, result.output
    assert "note: EMG_TENANT=prod not used: --sandbox names the server" in result.stderr
    assert settings_of(result) == {"host": ("built-in sandbox", "--sandbox")}
