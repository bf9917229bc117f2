import json
import platform
import subprocess
import sys

import pytest

from gnnns.cli import main
from gnnns.training import allocator

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# A fresh process (the allocator setting is process-wide): allocate, fill and free a 64 MiB tensor
# six times, counting the minor page faults of each round. glibc maps blocks above its mmap
# threshold afresh, so each round faults in all 16,384 of its 4 KiB pages; once freed memory is
# kept, later rounds reuse pages already mapped. (Now and then one later round still gets a fresh
# block, when a small allocation from elsewhere in the process has landed at the heap's top; the
# rounds after it reuse again.)
_FAULTS = """
import json, resource, sys, torch
from gnnns.training.allocator import apply_setting
kept = apply_setting(sys.argv[1])
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.empty(16 * 1024 * 1024)  # float32: 64 MiB
    x.fill_(1.0)
    del x
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
from gnnns.training.allocator import freed_memory_kept
print(json.dumps({"kept": kept, "reported": freed_memory_kept(), "faults": faults}))
"""


def _faults(setting: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _FAULTS, setting], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the setting applies to glibc only")
def test_kept_memory_is_reused_without_page_faults():
    pages = 64 * 1024 * 1024 // 4096
    system = _faults("system")
    assert system["kept"] is False and system["reported"] is False
    assert min(system["faults"]) > 0.9 * pages  # every round faults the block in afresh
    keep = _faults("keep")
    assert keep["kept"] is True and keep["reported"] is True
    assert keep["faults"][0] > 0.9 * pages  # the first round maps the memory ...
    reused = [f < 0.05 * pages for f in keep["faults"][1:]]
    assert sum(reused) >= 3, keep["faults"]  # ... most later ones find it mapped (system: none)


def test_setting_values_and_errors(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    assert allocator.apply_setting("system") is False and calls == []
    assert allocator.apply_setting(" Keep ") is True and calls == [1]
    monkeypatch.setenv("GNNNS_MALLOC", "system")
    assert allocator.apply_setting() is False and calls == [1]
    monkeypatch.delenv("GNNNS_MALLOC")
    assert allocator.apply_setting() is True and calls == [1, 1]  # keep is the default
    with pytest.raises(ValueError, match=r"GNNNS_MALLOC must be one of keep, system; got 'jemalloc'"):
        allocator.apply_setting("jemalloc")


def test_nothing_is_changed_where_it_cannot_apply(monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    assert allocator.keep_freed_memory() is False
    monkeypatch.delenv("LD_PRELOAD")
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False


def test_command_line_names_a_bad_setting(monkeypatch, capsys):
    monkeypatch.setenv("GNNNS_MALLOC", "tcmalloc")
    assert main(["datasets"]) == 1
    assert "GNNNS_MALLOC must be one of keep, system; got 'tcmalloc'" in capsys.readouterr().err
