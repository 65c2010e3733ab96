"""The command line against a sandbox thread: invoking it, and what the sandbox was asked."""

from __future__ import annotations

import json
import urllib.request

from click.testing import CliRunner, Result

from batch.cli import main
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxThread


def invoke(*args: str, url: str = "") -> Result:
    """Run ``emg-batch`` in-process with the sandbox account and *url* as ``EMG_HOST``."""
    env = {"EMG_USERNAME": DEFAULT_USER, "EMG_PASSWORD": DEFAULT_PASSWORD, "EMG_TOKEN": "",
           "EMG_HOST": url}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def api_requests(sandbox: SandboxThread) -> dict[str, object]:
    """What the sandbox was asked, its own introspection routes left out."""
    with urllib.request.urlopen(f"{sandbox.url}/_sandbox/stats", timeout=10) as answer:
        requests = json.load(answer)["requests"]
    return {k: v for k, v in requests.items() if "/_sandbox/" not in k}
