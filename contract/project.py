"""Where the Pulumi project is: the nearest directory at or above the working directory that
holds Pulumi.yaml. Stack files, the local stack's state and the Automation API's work dir are
all found from it, never from where the tool is installed."""

from __future__ import annotations

from pathlib import Path

PROJECT_FILE = "Pulumi.yaml"


def find_project_dir(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    return None
