"""`python -m clue_ext.select` / `clue-select`: alone, under torchrun, and on bad input."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import clue_ext
from clue_ext.select_command import EXIT_BAD_INPUT, main
from clue_ext.selection import entropy_weights

sys.path.insert(0, str(Path(__file__).parent))
from distributed_worker import pool  # noqa: E402

N = 2400


@pytest.fixture
def saved_pool(tmp_path):
    x, probs = pool(n=N)
    np.save(tmp_path / "features.npy", x.numpy())
    np.save(tmp_path / "probs.npy", probs.numpy())
    return tmp_path, x, probs


def args(folder, *extra, features="features.npy", probs="probs.npy", budget=30, out="picks.npy"):
    return ["--features", str(folder / features), "--probs", str(folder / probs), "--budget", str(budget),
            "--out", str(folder / out), "--seed", "0", *extra]


def command(*argv, launcher=(), **kwargs):
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *launcher, "-m", "clue_ext.select", *argv], capture_output=True,
                          text=True, timeout=300, env=environment, **kwargs)


def torchrun(nproc):
    return ("-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}")


def coverage(x, probs, picks):
    return float((entropy_weights(probs) * torch.cdist(x.double(), x[picks].double()).min(dim=1).values ** 2).sum())


def test_alone_writes_select_picks(saved_pool):
    folder, x, probs = saved_pool
    done = command(*args(folder))
    assert done.returncode == 0, done.stderr
    assert "wrote 30 row indices" in done.stderr
    picks = np.load(folder / "picks.npy")
    assert picks.dtype == np.int64
    assert picks.tolist() == clue_ext.select(x, probs, 30, seed=0).tolist()


def test_reads_float16_npy_pt_and_an_exclude_file(saved_pool):
    folder, x, probs = saved_pool
    np.save(folder / "features16.npy", x.numpy().astype(np.float16))
    torch.save(probs, folder / "probs.pt")
    labeled = np.arange(0, N, 5)
    np.save(folder / "labeled.npy", labeled)
    assert main(args(folder, "--exclude", str(folder / "labeled.npy"), "--init", "k-means++",
                     features="features16.npy", probs="probs.pt")) == 0
    expected = clue_ext.select(x.half(), probs, 30, seed=0, exclude=labeled.tolist(), init="k-means++")
    assert np.load(folder / "picks.npy").tolist() == expected.tolist()


@pytest.mark.parametrize("change,message", [
    (dict(features="missing.npy"), "--features: no such file"),
    (dict(probs="features.npy"), "probs must be >= 0"),
    (dict(probs="short.npy"), f"--probs: must have one row per row of --features ({N}), got 10"),
    (dict(budget=N + 1), f"budget must be <= {N}"),
    (dict(features="notes.txt"), "must be a .npy or .pt file"),
])
def test_bad_input_exits_2_and_writes_nothing(saved_pool, capsys, change, message):
    folder, _, _ = saved_pool
    (folder / "notes.txt").write_text("not features")
    np.save(folder / "short.npy", np.full((10, 3), 1 / 3))
    assert main(args(folder, **change)) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert not (folder / "picks.npy").exists()


@pytest.mark.slow
def test_under_torchrun_two_ranks_cover_the_pool_as_one(saved_pool):
    folder, x, probs = saved_pool
    done = command(*args(folder), launcher=torchrun(2))
    assert done.returncode == 0, done.stderr
    assert "2 ranks; rank 0 holds rows [0, 1200) of 2400" in done.stderr
    picks = torch.from_numpy(np.load(folder / "picks.npy"))
    assert len(set(picks.tolist())) == 30
    alone = clue_ext.select(x, probs, 30, seed=0)
    assert coverage(x, probs, picks) <= 1.01 * coverage(x, probs, alone)


@pytest.mark.slow
def test_under_torchrun_a_bad_shard_fails_every_rank_and_writes_nothing(saved_pool):
    folder, x, _ = saved_pool
    broken = x.numpy().copy()
    broken[2000, 5] = np.nan  # in rank 1's rows [1200, 2400)
    np.save(folder / "broken.npy", broken)
    done = command(*args(folder, features="broken.npy"), launcher=torchrun(2))
    assert done.returncode != 0
    for rank in (0, 1):
        assert f"clue-select: error (rank {rank}): rank 1 of 2: features must be finite" in done.stderr
    assert not (folder / "picks.npy").exists()


@pytest.mark.slow
def test_console_script_is_installed(saved_pool):
    folder, x, probs = saved_pool
    script = shutil.which("clue-select") or str(Path(sys.executable).parent / "clue-select")
    done = subprocess.run([script, *args(folder)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert np.load(folder / "picks.npy").tolist() == clue_ext.select(x, probs, 30, seed=0).tolist()


def test_importing_the_command_module_keeps_select_callable():
    import clue_ext.select  # replaces the package's attribute with the module

    x, probs = pool(n=200)
    assert clue_ext.select(x, probs, 5, seed=0).tolist() == clue_ext.selection.select(x, probs, 5, seed=0).tolist()


def test_weight_functions_still_import_from_clue_ext_select():
    # They lived in clue_ext/select.py before the library code moved to selection.py.
    from clue_ext.select import entropy_weights as moved, margin_weights, sample_weights

    probs = torch.softmax(torch.randn(20, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    assert moved is entropy_weights
    assert torch.equal(sample_weights(probs, weighting="margin"), margin_weights(probs))
