"""Trainer callbacks shared by the training commands."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerCallback


class JsonlMetricsCallback(TrainerCallback):
    """Appends every logged metrics dict, with its step, to ``output_dir/metrics.jsonl``.

    A plain file next to the checkpoints: readable while the run goes on, plotted by the demo, and
    kept (appended to) when a killed run resumes.
    """

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        path = Path(args.output_dir) / "metrics.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(json.dumps({"step": state.global_step, **logs}) + "\n")
