"""The command line: click only. It parses options, calls a job or a library function, prints,
and maps errors to exit codes (``common``); ``main`` holds the commands and ``pull`` the pull
group and ``listen``.
"""

from batch.cli.main import main

__all__ = ["main"]
