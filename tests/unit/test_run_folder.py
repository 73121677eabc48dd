"""The run-folder contract (rlt.run_folder) and the journals of resumable work (rlt.jobs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from rlt.errors import UserError
from rlt.generation import SamplingConfig
from rlt.jobs import Job, Journal
from rlt.reward import RewardConfig
from rlt.run_folder import LOCK, ROW_SELECTION, RUN_INFO, SPEED_ONLY, RunFolder, differences, fingerprint, settings


def _settings(tmp_path, **changes):
    sampling = {"temperature": 0.7, "num_samples": 2, "batch_size": 8, **changes.pop("sampling", {})}
    return settings({"model": str(changes.pop("model", tmp_path / "model")), "dataset": "org/rows"},
                    sampling=SamplingConfig(**sampling), reward=RewardConfig(**changes))


def test_speed_only_settings_keep_the_fingerprint(tmp_path):
    (tmp_path / "model").mkdir()
    base = fingerprint(_settings(tmp_path))
    assert {"batch_size", "max_batch_tokens", "logit_chunk_size", "device", "overwrite", "resume"} <= SPEED_ONLY
    assert {"limit", "on_error"} == ROW_SELECTION
    assert fingerprint(_settings(tmp_path, sampling={"batch_size": 1})) == base
    assert fingerprint(_settings(tmp_path, max_batch_tokens=7, logit_chunk_size=3)) == base
    assert fingerprint(_settings(tmp_path, model=tmp_path / "." / "model")) == base  # one folder named two ways
    assert fingerprint(_settings(tmp_path, sampling={"temperature": 0})) == fingerprint(
        _settings(tmp_path, sampling={"temperature": 0.0}))  # YAML's integer is the flag's float


def test_settings_that_change_results_change_the_fingerprint(tmp_path):
    base = fingerprint(_settings(tmp_path))
    for changed in (_settings(tmp_path, sampling={"temperature": 0.9}), _settings(tmp_path, kl_mean_coef=2.0),
                    _settings(tmp_path, sampling={"num_samples": 3}), _settings(tmp_path, model="org/other")):
        assert fingerprint(changed) != base


def test_differences_name_each_setting_that_changed(tmp_path):
    old, new = _settings(tmp_path), _settings(tmp_path, sampling={"temperature": 0.9}, kl_mean_coef=2.0)
    assert differences(old, new) == ["kl_mean_coef: 3 → 2", "temperature: 0.7 → 0.9"]  # as their flags
    assert differences({"a": {"b": {"c": 1}}}, {"a": {"b": {}}}) == ["b: (unset) → {}", "b.c: 1 → (unset)"]


def _claim(folder, work, **kwargs):
    return RunFolder(folder, "distill").claim(work, **kwargs)


def test_a_folder_holds_one_run(tmp_path):
    folder = tmp_path / "out"
    work = {"explanations": {"sampling": {"temperature": 0.7}}}
    with _claim(folder, work, expected=[folder / "done.txt"]) as claim:
        assert claim.previous is None and not claim.finished
        claim.start(arguments={"x": 1})
        (folder / "done.txt").write_text("outputs")
        claim.finish()
    record = json.loads((folder / RUN_INFO).read_text())
    assert record["status"] == "finished" and record["work"] == work and record["config"] == {"arguments": {"x": 1}}
    assert not (folder / LOCK).exists()

    with _claim(folder, work, expected=[folder / "done.txt"]) as claim:  # the same run again: nothing to do
        assert claim.finished
    with _claim(folder, {**work, "rewards": {"student": "s"}}) as claim:  # more work on the same explanations
        assert claim.previous is not None and not claim.finished
        claim.start()
    assert set(json.loads((folder / RUN_INFO).read_text())["work"]) == {"explanations", "rewards"}
    with pytest.raises(UserError, match=r"made with other settings \(temperature: 0.7 → 0.9\): "
                                        r"choose another --output_dir, or --overwrite true"):
        with _claim(folder, {"explanations": {"sampling": {"temperature": 0.9}}}):
            pass
    with pytest.raises(UserError, match="holds a `rlt distill` run, not `rlt evaluate`"):
        with RunFolder(folder, "evaluate").claim({}):
            pass
    with _claim(folder, {"explanations": {"sampling": {"temperature": 0.9}}}, overwrite=True) as claim:
        assert claim.previous is None and sorted(p.name for p in folder.iterdir()) == [LOCK]


def test_a_refused_run_leaves_the_record_as_it_was(tmp_path):
    folder = tmp_path / "out"
    with _claim(folder, {"explanations": {"temperature": 0.7}}) as claim:
        claim.start()
    before = (folder / RUN_INFO).read_text()
    with pytest.raises(UserError), _claim(folder, {"explanations": {"temperature": 0.9}}):
        pass
    assert (folder / RUN_INFO).read_text() == before


def test_files_no_run_wrote_are_never_deleted(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(UserError, match=r"holds files that no rlt run wrote \(notes.txt\)"):
            with _claim(tmp_path, {}, overwrite=overwrite):
                pass
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "notes.txt").unlink()
    (tmp_path / ".rlt_run.json.1a2b3c4d.tmp").write_text("{")  # the temporary file of a killed atomic write
    with _claim(tmp_path, {}) as claim:
        assert claim.previous is None


def test_a_damaged_record_is_named(tmp_path):
    (tmp_path / RUN_INFO).write_text("{")
    with pytest.raises(UserError, match=f"{tmp_path / RUN_INFO} is not readable JSON"):
        with _claim(tmp_path, {}):
            pass


HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from rlt.run_folder import RunFolder
    with RunFolder(Path(sys.argv[1]), "evaluate").claim({}):
        print("held", flush=True)
        time.sleep(60)
""")


def test_a_second_process_is_refused_while_the_first_lives(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=rf"is in use by another run \(`rlt evaluate`, pid {holder.pid} on "):
            with RunFolder(tmp_path, "evaluate").claim({}):
                pass
    finally:
        holder.kill()
        holder.wait()
    # Killed (the kernel drops its lock): the next run takes the folder over.
    with RunFolder(tmp_path, "evaluate").claim({}) as claim:
        assert claim.previous is None
        owner = json.loads((tmp_path / LOCK).read_text())
        assert owner["pid"] == os.getpid() and owner["command"] == "evaluate"


def test_without_flock_a_lock_of_a_gone_process_is_taken_over(tmp_path, monkeypatch):
    import errno
    import socket

    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr("rlt.run_folder.fcntl.flock", no_flock)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    (tmp_path / LOCK).write_text(json.dumps({"pid": int(dead.stdout), "host": host, "command": "distill"}))
    with RunFolder(tmp_path, "evaluate").claim({}):
        pass
    (tmp_path / LOCK).write_text(json.dumps({"pid": 1, "host": "another-host", "command": "distill"}))
    with pytest.raises(UserError, match=f"if that run is gone, delete {tmp_path / LOCK}"):
        with RunFolder(tmp_path, "evaluate").claim({}):
            pass


def test_a_journal_of_other_settings_is_refused(tmp_path):
    path = tmp_path / "x.journal.jsonl"
    path.write_text(json.dumps({"fingerprint": "old"}) + "\n")
    with pytest.raises(UserError, match="delete it, or use --overwrite true"):
        Journal(path, "new", key=lambda e: e["k"]).load()
    path.write_text(json.dumps({"k": 1}) + "\n")  # no header at all
    with pytest.raises(UserError, match="made with other"):
        Journal(path, "new", key=lambda e: e["k"]).load()


def test_a_job_does_only_the_units_its_journal_lacks(tmp_path):
    journal = Journal(tmp_path / "j.jsonl", "fp", key=lambda e: (e["unit"], e["part"]))
    job = Job(journal, keys=lambda unit: [(unit, 0), (unit, 1)])
    journal.load()
    journal.append([{"unit": 0, "part": 0}, {"unit": 0, "part": 1}, {"unit": 1, "part": 0, "old": True}])
    with journal.path.open("a") as f:
        f.write('{"unit": 2, "pa')  # a line cut by a kill
    asked = []

    def work(pending):
        asked.append(list(pending))
        journal.append({"unit": u, "part": p} for u in pending for p in (0, 1))

    done = job.run([0, 1, 2], work)
    assert asked == [[1, 2]]  # unit 1 had one part of two: done again, whole
    assert sorted(done) == [(u, p) for u in range(3) for p in (0, 1)] and "old" not in done[(1, 0)]
    assert job.run([0, 1, 2], work) == done and len(asked) == 1
