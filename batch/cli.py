"""The command line: a thin layer that parses options, calls the library, maps errors."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="emg-batch")
def main() -> None:
    """Bulk, rate-limited, resumable case work on Illumina Emedgene."""
