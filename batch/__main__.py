"""`python -m batch` runs the command line."""

from batch.cli import main

main()
