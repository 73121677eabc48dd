"""rlt's defaults for another library's config dataclass, as TRL gives its configs their own.

A command whose defaults differ from a config's (TRL's ``GRPOConfig`` for the paper's teacher RL, rlt's
``SamplingConfig`` for evaluation) subclasses it and redefines those fields with :func:`default`: the
dataclass is the one place the default lives, ``--help`` shows it, and a YAML config states only what
differs from it.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def default(config: type, name: str, value: Any, why: str) -> Any:
    """``config``'s field ``name`` with the default ``value``, its help saying so and ``why``."""
    parent = config.__dataclass_fields__[name]
    help_text = " ".join(filter(None, (parent.metadata.get("help", "").strip(), f"rlt's default: {value} ({why}).")))
    return field(default=value, metadata={**parent.metadata, "help": help_text})
