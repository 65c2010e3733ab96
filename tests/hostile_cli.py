"""Hostile command lines: options and arguments a user may type."""

from __future__ import annotations

from tests.hostile import Hostile, csv_file

_OK = csv_file("m.csv", "Family Id,Case Type,Files Names,Sample Type,BioSample Name,"
                        "Relation,Sex,Phenotypes\nF1,Exome,,FASTQ,S1,proband,M,Seizure\n")

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

]
