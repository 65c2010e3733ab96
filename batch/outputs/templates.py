"""``emg-batch template``: header-only manifests to start from."""

from __future__ import annotations

from pathlib import Path

from batch.manifest import ACTION_COLUMNS, OFFICIAL_COLUMNS
from batch.outputs.files import atomic_path, make_dir
from batch.outputs.keep import refuse_existing

# The 23 columns of the official batch CSV, in the official template's order.
OFFICIAL_TEMPLATE_COLUMNS = OFFICIAL_COLUMNS
UPDATE_TEMPLATE_COLUMNS = ACTION_COLUMNS
TEMPLATE_HELP = (
    "batch_template.csv: one row per family member under the header; rows with the same "
    "Family Id make one case. update_template.csv: one row per existing case (Case Id) with the "
    "actions to run on it. Both files are header-only: every row you add is sent."
)


def write_template(out_dir: Path, *, force: bool = False) -> list[Path]:
    """Write header-only manifests to start from: the official batch CSV and an update CSV.

    ``batch_template.csv`` is the official format: a ``[Data]`` row (padded with commas as the
    official template is) and the 23 official columns. ``update_template.csv`` holds ``Case Id``
    and the action columns. No example rows: any row would be sent as data (see TEMPLATE_HELP).
    A file already there (perhaps filled in since) is replaced only with *force*; without it,
    ``UsageError`` names it and nothing is written.
    """
    official = OFFICIAL_TEMPLATE_COLUMNS
    files = {
        "batch_template.csv": ["[Data]" + "," * (len(official) - 1), ",".join(official)],
        "update_template.csv": [",".join(UPDATE_TEMPLATE_COLUMNS)],
    }
    if not force:
        refuse_existing(out_dir / name for name in files)
    make_dir(out_dir)
    written = []
    for name, lines in files.items():
        out = out_dir / name
        with atomic_path(out) as tmp:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tmp.chmod(0o644)  # no patient data in a template: readable like any new file
        written.append(out)
    return written
