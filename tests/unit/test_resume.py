"""The one fingerprint rule of every resumable command (score, distill, evaluate)."""

from __future__ import annotations

import json

import pytest

from rlt.generation import SamplingConfig
from rlt.resume import SPEED_ONLY, PartialFile, settings_fingerprint
from rlt.reward import RewardConfig


def _fingerprint(tmp_path, **changes):
    sampling = {"temperature": 0.7, "num_samples": 2, "batch_size": 8, **changes.pop("sampling", {})}
    return settings_fingerprint({"model": str(changes.pop("model", tmp_path / "model")), "dataset": "org/rows"},
                                sampling=SamplingConfig(**sampling), reward=RewardConfig(**changes))


def test_speed_only_settings_keep_the_fingerprint(tmp_path):
    (tmp_path / "model").mkdir()
    base = _fingerprint(tmp_path)
    assert {"batch_size", "max_batch_tokens", "logit_chunk_size", "limit", "device"} <= SPEED_ONLY
    assert _fingerprint(tmp_path, sampling={"batch_size": 1}) == base
    assert _fingerprint(tmp_path, max_batch_tokens=7, logit_chunk_size=3) == base
    assert _fingerprint(tmp_path, model=tmp_path / "." / "model") == base  # one folder named two ways
    assert _fingerprint(tmp_path, sampling={"temperature": 0.7}) == base


def test_settings_that_change_results_change_the_fingerprint(tmp_path):
    base = _fingerprint(tmp_path)
    for changed in (_fingerprint(tmp_path, sampling={"temperature": 0.9}), _fingerprint(tmp_path, kl_mean_coef=2.0),
                    _fingerprint(tmp_path, sampling={"num_samples": 3}), _fingerprint(tmp_path, model="org/other")):
        assert changed != base


def test_yaml_integers_are_the_flags_floats(tmp_path):
    assert _fingerprint(tmp_path, sampling={"temperature": 0}) == _fingerprint(tmp_path, sampling={"temperature": 0.0})


def test_a_partial_file_of_other_settings_is_refused(tmp_path):
    path = tmp_path / "x.partial.jsonl"
    path.write_text(json.dumps({"fingerprint": "old"}) + "\n")
    with pytest.raises(ValueError, match="delete it"):
        PartialFile(path, "new", key=lambda e: e["k"]).load()
