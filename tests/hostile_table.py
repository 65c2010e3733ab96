"""Print the hostile-input table as it is now: each input, its command, exit code and message.

Run: ``python -m tests.hostile_table`` (from the repository root). The table is what
``test_hostile_inputs.py`` checks, with the message each input actually gets.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests import hostile_cli, hostile_manifests
from tests.hostile import Hostile, run_case


def _message(text: str, phrase: str) -> str:
    """The line that holds the phrase the test checks (else the first line), cut for the table."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = next((line for line in lines if phrase.lower() in line.lower()),
                lines[0] if lines else "")
    line = line.replace("|", "\\|")
    return line if len(line) <= 110 else line[:107] + "..."


def _row(case: Hostile) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        outcome = run_case(case, Path(tmp))
    command = " ".join(arg.replace("{dir}/", "").replace("{dir}", ".") for arg in case.args)
    return (f"| {case.name} | `{command[:60]}` | {outcome.code} | "
            f"{_message(outcome.stderr + outcome.stdout, case.phrase)} |")


def main() -> None:
    """Print the table in Markdown."""
    print("| input | command | exit | message |")
    print("|---|---|---:|---|")
    for case in [*hostile_manifests.CASES, *hostile_cli.CASES]:
        print(_row(case), flush=True)


if __name__ == "__main__":
    main()
