"""Every numeric option of every command refuses nan, inf and values out of its range with a
usage error naming the option (exit 2). The options are read from the click command tree, so
an option added later is covered without touching this file."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from batch.cli import main
from batch.cli.common import Number


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], click.Command]]:
    """``(words, command)`` of every command under *group*."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def numeric_options() -> list[tuple[tuple[str, ...], click.Option]]:
    """Every option taking a number (a ``-v`` counter takes none)."""
    found = []
    for path, command in commands(main):
        for param in command.params:
            if (isinstance(param, click.Option) and not param.count and not param.is_flag
                    and isinstance(param.type, click.types._NumberParamTypeBase)):
                found.append((path, param))
    return found


def bad_values(kind: click.ParamType) -> list[str]:
    """nan, inf, -inf, and numbers just outside the option's range."""
    values = ["nan", "inf", "-inf", "1e999"]
    assert isinstance(kind, Number)
    if kind.min is not None:
        values.append(str(kind.min if kind.min_open else kind.min - 1))
        if kind.min > 0:
            values.append("0")
    if kind.max is not None:
        values.append(str(kind.max + 1))
    if kind.integer:
        values.append("1.5")
    return values


CASES = [(path, option, value) for path, option in numeric_options()
         for value in bad_values(option.type)]


def test_the_tree_has_the_numeric_options_people_use() -> None:
    names = {(" ".join(path), option.opts[0]) for path, option in numeric_options()}
    assert {("run", "--rate"), ("run", "--timeout"), ("run", "--concurrency"),
            ("run", "--max-failures"), ("validate", "--rate"), ("pull finalized", "--page-size"),
            ("listen", "--port"), ("sandbox", "--latency-ms"), ("sandbox", "--port"),
            ("pull info", "--timeout")} <= names


@pytest.mark.parametrize("path,option", numeric_options(),
                         ids=[f"{' '.join(p)} {o.opts[0]}" for p, o in numeric_options()])
def test_every_numeric_option_uses_the_shared_type(path: tuple[str, ...],
                                                    option: click.Option) -> None:
    assert isinstance(option.type, Number), f"{' '.join(path)} {option.opts[0]}"


@pytest.mark.parametrize("path,option,value", CASES,
                         ids=[f"{' '.join(p)} {o.opts[0]}={v}" for p, o, v in CASES])
def test_a_bad_number_is_a_usage_error_naming_the_option(
        path: tuple[str, ...], option: click.Option, value: str) -> None:
    result = CliRunner().invoke(main, [*path, f"{option.opts[0]}={value}"],
                                env={"EMG_HOST": "", "EMG_TOKEN": ""})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert f"Error: Invalid value for '{option.opts[0]}': " in result.stderr, result.stderr


@pytest.mark.parametrize("value,message", [
    ("nan", "'nan' is not a finite number."),
    ("inf", "'inf' is not a finite number."),
    ("-inf", "'-inf' is not a finite number."),
    ("0.5", "0.5 is not in the range x>=1."),
    ("soon", "'soon' is not a number."),
])
def test_the_message_is_exact(value: str, message: str) -> None:
    result = CliRunner().invoke(main, ["run", f"--timeout={value}", "m.csv"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: Invalid value for '--timeout': {message}"


def test_whole_numbers_and_good_values_pass() -> None:
    count = Number(1, 256, integer=True)
    assert count.convert("8", None, None) == 8 and isinstance(count.convert("8", None, None), int)
    assert count.convert("2.0", None, None) == 2
    assert Number(min=0.01).convert("0.5", None, None) == 0.5
    assert Number(min=0, min_open=True).convert("1e-3", None, None) == 0.001
    with pytest.raises(click.BadParameter, match="not in the range x>0"):
        Number(min=0, min_open=True).convert("0", None, None)


def test_a_duration_beyond_the_calendar_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["pull", "finalized", "--since", "99999999999d",
                                       "--out", "reports", "--sandbox"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--since': '99999999999d' reaches back before the year 1")


def test_a_large_whole_number_keeps_every_digit() -> None:
    assert Number(integer=True).convert("12345678901234567891", None, None) == (
        12345678901234567891)
    assert Number(integer=True).convert("1e3", None, None) == 1000
