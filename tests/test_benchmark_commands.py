"""Benchmark results record commands that run from any checkout (benchmarks/_common.shown_command)."""

from __future__ import annotations

import shlex
import shutil
import sys

import pytest

from tests.benchmark_scripts import benchmark_script


@pytest.fixture(scope="module")
def common():
    with benchmark_script("_common") as module:
        yield module


def test_paths_inside_the_checkout_become_relative(common):
    repo = common.REPO
    cmd = [sys.executable, str(repo / "benchmarks" / "train_speed.py"), "--output", str(repo / "runs" / "a b")]
    cmd += [f"--root={repo / 'runs'}", "--lr", "0.1", "--x=1"]
    shown = "python benchmarks/train_speed.py --output 'runs/a b' --root=runs --lr 0.1 --x=1"
    assert common.shown_command(cmd) == shown


def test_paths_outside_the_checkout_and_plain_words_are_kept(common, tmp_path):
    outside = tmp_path / "weights.pt"
    assert not outside.resolve().is_relative_to(common.REPO)
    cmd = ["python", "script.py", str(outside), "/", "relative/path", "--flag=/"]
    assert shlex.split(common.shown_command(cmd)) == cmd


def test_the_gnnns_console_script_is_shown_by_name(common):
    exe = shutil.which("gnnns")
    if exe is None:
        pytest.skip("the gnnns console script is not on PATH")
    assert common.shown_command([exe, "train", "--epochs", "1"]) == "gnnns train --epochs 1"
