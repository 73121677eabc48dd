"""Where a model or a dataset comes from: a local path or a Hugging Face hub name, decided locally.

``runs/teacher`` and ``Qwen/Qwen2.5-7B-Instruct`` look alike. A name is a local path when it exists,
when it is spelled as one (``./x``, ``/x``, ``~/x``, ``x/y/z``: a hub id has one slash), or when its
first component is a local folder (``runs/teacher`` inside a checkout that has ``runs/``). Such a path
that is missing is an error at once, before any hub call: transformers would otherwise take it for a
hub name and retry the hub for most of a minute before failing with an unrelated connection error.
"""

from __future__ import annotations

import os
from pathlib import Path

from rlt.errors import UserError

# Files of which a saved model folder (save_pretrained) holds the first and a tokenizer folder one of the others.
MODEL_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "vocab.json")


def is_local_path(name: str) -> bool:
    """Whether ``name`` means a local file or folder (see the module docstring), existing or not."""
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or os.path.isabs(name):
        return True
    parts = Path(name).parts
    return len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir())


def hub_is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_model_source(name: str, role: str = "model") -> None:
    """Refuse, without touching the hub, a model that cannot load: a missing local folder, a folder
    that is not a saved model, or a hub name when the hub is offline and the model is not cached."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise UserError(f"{role} {name}: the folder has no {MODEL_FILE}, so it is not a saved model "
                            "(save_pretrained writes one)")
        if not any((path / file).is_file() for file in TOKENIZER_FILES):
            raise UserError(f"{role} {name}: the folder has no tokenizer ({', '.join(TOKENIZER_FILES)})")
        return
    if path.exists():
        raise UserError(f"{role} {name}: a file, not a model folder")
    if is_local_path(name):
        raise UserError(f"{role} {name}: no such folder")
    if hub_is_offline() and not _cached_on_this_machine(name):
        raise UserError(f"{role} {name}: not a local folder, and the hub is offline (HF_HUB_OFFLINE) with no "
                        "cached copy of it")


def _cached_on_this_machine(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, MODEL_FILE), str)
    except ValueError:  # not a valid repo id either
        return False


__all__ = ["check_model_source", "hub_is_offline", "is_local_path"]
