"""Hostile command lines: options and arguments a user may type."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.hostile import Hostile, csv_file

_OK = csv_file("m.csv", "Family Id,Case Type,Files Names,Sample Type,BioSample Name,"
                        "Relation,Sex,Phenotypes\nF1,Exome,,FASTQ,S1,proband,M,Seizure\n")



def _text(name: str, text: str) -> Callable[[Path], None]:
    """A setup that writes *text* to *name* (any file, not only a manifest)."""
    return csv_file(name, text)


def _both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    """A setup that runs each of *setups*."""
    def run(folder: Path) -> None:
        for setup in setups:
            setup(folder)
    return run


CASES: list[Hostile] = [
    Hostile("no such manifest", ("validate", "nope.csv"), 2, "does not exist"),
    Hostile("plain http to a remote host", ("run", "m.csv", "--host", "http://example.org"),
            2, "https", _OK, env={"EMG_TOKEN": "t"}),
    Hostile("concurrency zero", ("run", "m.csv", "--sandbox", "--concurrency", "0"), 2,
            "concurrency", _OK),
    Hostile("timeout nan", ("run", "m.csv", "--sandbox", "--timeout", "nan"), 2,
            "Invalid value for '--timeout': 'nan' is not a finite number", _OK),
    Hostile("rate inf", ("run", "m.csv", "--sandbox", "--rate", "inf"), 2,
            "Invalid value for '--rate': 'inf' is not a finite number", _OK),
    Hostile("rate nan in validate", ("validate", "m.csv", "--rate", "nan"), 2,
            "Invalid value for '--rate': 'nan' is not a finite number", _OK),
    Hostile("sandbox latency -inf", ("sandbox", "--port", "0", "--latency-ms", "-inf"), 2,
            "Invalid value for '--latency-ms': '-inf' is not a finite number"),
    Hostile("loopback host without a scheme", ("run", "m.csv", "--host", "127.0.0.1:8791"), 2,
            "the host has no scheme: use https://127.0.0.1:8791 or, on loopback only, "
            "http://127.0.0.1:8791", _OK, env={"EMG_TOKEN": "t"}),
    Hostile("out-dir under a regular file", ("run", "m.csv", "--sandbox", "--out-dir",
                                              "afile/out"), 3,
            "cannot write afile/out: Not a directory", _both(_OK, _text("afile", "x\n"))),
    Hostile("ledger that is not a ledger", ("run", "m.csv", "--sandbox", "--ledger", "notes.txt"),
            2, "notes.txt is not an emg-batch ledger (not a SQLite database); it was left as it is",
            _both(_OK, _text("notes.txt", "hello\n"))),
    Hostile("status of a file that is not a ledger", ("status", "--ledger", "notes.txt"), 2,
            "is not an emg-batch ledger", _text("notes.txt", "hello\n")),
    Hostile("body limit not a number", ("run", "m.csv", "--sandbox"), 2,
            "EMG_MAX_BODY_MB must be a positive number of megabytes, got 'abc'", _OK,
            env={"EMG_MAX_BODY_MB": "abc"}),
    Hostile("--since too far back", ("pull", "finalized", "--sandbox", "--since", "99999999999d",
                                     "--out", "r"), 2, "reaches back before the year 1"),
    Hostile("--report-id without its parts", ("pull", "finalized", "--sandbox", "--report-id",
                                              "nonsense", "--out", "r"), 2,
            "expected CASE:TYPE:ID"),
    Hostile("a case named ..", ("pull", "info", "--sandbox", "--cases", "..", "--out", "i.csv"), 1,
            "refusing the name '..': '..' would change the route; nothing was sent"),
    Hostile("export to an unknown format", ("export", "m.csv", "--out", "x.docx"), 2,
            "--out must end in .xlsx, .csv or .parquet", _OK),
    Hostile("webhook token too short", ("listen", "--port", "0", "--ledger", "ev.sqlite",
                                        "--sandbox"), 2,
            "EMG_WEBHOOK_TOKEN must be 20 to 256 letters", env={"EMG_WEBHOOK_TOKEN": "short"}),
]
