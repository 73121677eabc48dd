"""The command line's exit: a distributed run leaves its process group, so that no process aborts at teardown."""

import sys
import types

import pytest
import torch.distributed as dist

from rlt import cli
from rlt.errors import UserError


@pytest.fixture
def one_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.fixture
def command(monkeypatch):
    """Install a command ``probe`` whose ``main`` runs the given function."""
    def install(run):
        module = types.ModuleType("probe_command")
        module.main = run
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setitem(cli.COMMANDS, "probe", (module.__name__, "a test's command"))
    return install


def _refuse(argv):
    raise UserError("refused")


@pytest.mark.parametrize(("run", "status"), [(lambda argv: 0, 0), (_refuse, 2)])
def test_a_finished_or_refused_command_leaves_the_process_group(one_process_group, command, run, status):
    command(run)
    assert dist.is_initialized()
    assert cli.main(["probe"]) == status
    assert not dist.is_initialized()


def test_an_unexpected_error_leaves_the_group_alone(one_process_group, command):
    """The other processes may still wait on this one: ending the group could hang it instead of exiting."""
    def fail(argv):
        raise RuntimeError("a bug")
    command(fail)
    with pytest.raises(RuntimeError):
        cli.main(["probe"])
    assert dist.is_initialized()
