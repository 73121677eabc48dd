"""Where a model or a dataset comes from: a local path or a Hugging Face hub name, decided locally.

``runs/teacher`` and ``Qwen/Qwen2.5-7B-Instruct`` look alike. A name is a local path when it exists,
when it is spelled as one (``./x``, ``/x``, ``~/x``, ``x/y/z``: a hub id has one slash), or when its
first component is a local folder (``runs/teacher`` inside a checkout that has ``runs/``). Such a path
that is missing is an error at once, before any hub call: transformers would otherwise take it for a
hub name and retry the hub for most of a minute before failing with an unrelated connection error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import SafetensorError, safe_open

from rlt.errors import UserError

# Files of which a saved model folder (save_pretrained) holds the first, one of the tokenizer files and
# weights: one file, an index of shards, or a PEFT adapter.
MODEL_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "vocab.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json", "adapter_model.safetensors", "adapter_model.bin")


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
        _check_weights(path, f"{role} {name}")
        return
    if path.exists():
        raise UserError(f"{role} {name}: a file, not a model folder")
    if is_local_path(name):
        raise UserError(f"{role} {name}: no such folder")
    if hub_is_offline() and not _cached_on_this_machine(name):
        raise UserError(f"{role} {name}: not a local folder, and the hub is offline (HF_HUB_OFFLINE) with no "
                        "cached copy of it")


def _check_weights(folder: Path, label: str) -> None:
    """A model folder's weights are there and their safetensors headers whole (reading a header costs
    nothing; a save killed midway leaves a file shorter than its header says), so that a damaged folder
    is named before any run starts rather than by a loader's traceback once it has."""
    found = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not found:
        raise UserError(f"{label}: the folder has no weights ({', '.join(WEIGHT_FILES[:3])}, ...): "
                        "was its save interrupted?")
    files = found[:1]
    if found[0].name.endswith(".index.json"):
        try:
            shards = sorted(set(json.loads(found[0].read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise UserError(f"{label}: {found[0].name} is not a readable index of weight files") from None
        files = [folder / shard for shard in shards]
    for file in files:
        if not file.is_file():
            raise UserError(f"{label}: the weight file {file.name} is missing")
        if file.suffix == ".safetensors":
            try:
                with safe_open(str(file), "numpy"):
                    pass
            except (SafetensorError, OSError) as error:
                raise UserError(f"{label}: {file.name} is damaged ({error}); save the model again") from None


def _cached_on_this_machine(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, MODEL_FILE), str)
    except ValueError:  # not a valid repo id either
        return False


__all__ = ["check_model_source", "hub_is_offline", "is_local_path"]
