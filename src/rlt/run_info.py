"""What every run writes next to its outputs: the resolved config, package versions and git SHA."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from rlt.data import write_json

RUN_INFO = "rlt_run.json"
_PACKAGES = ("rlt", "torch", "transformers", "trl", "accelerate", "datasets", "math-verify", "vllm")


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_sha() -> str | None:
    """SHA of the rlt checkout this code runs from (None for an installed wheel)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def write_run_info(output_dir: str | Path, command: str, **configs: Any) -> Path:
    """Write ``output_dir/rlt_run.json``: the command, every config (dataclasses or dicts), versions, git SHA,
    time. Every command writes it, under this one name, once its inputs are known to be usable."""
    path = Path(output_dir) / RUN_INFO
    write_json(path, {
        "command": command,
        "argv": sys.argv,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "versions": package_versions(),
        "config": {name: asdict(c) if is_dataclass(c) else c for name, c in configs.items()},
    })
    return path
