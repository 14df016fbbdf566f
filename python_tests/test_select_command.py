"""`python -m clue_ext.select` / `clue-select`: alone, under torchrun, and on bad input."""

import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import threading
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
    (dict(probs="fifo.npy"), "--probs: not a regular file"),
])
def test_bad_input_exits_2_and_writes_nothing(saved_pool, capsys, change, message):
    folder, _, _ = saved_pool
    (folder / "notes.txt").write_text("not features")
    np.save(folder / "short.npy", np.full((10, 3), 1 / 3))
    os.mkfifo(folder / "fifo.npy")  # opened, it would block the read for ever
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


# --- refusals before any work, files from other pipelines, ranks that read different files, signals ---

DRIVER = Path(__file__).parent / "select_driver.py"


@pytest.mark.parametrize("out,message", [
    ("features.npy", "is the same file as --features"),
    ("sub/../probs.npy", "is the same file as --probs"),
    ("hard-link.npy", "is the same file as --features"),
    ("link-to-labeled.npy", "is the same file as --exclude"),
    ("fifo", "exists and is a FIFO; only a regular file is ever replaced"),
    ("sub", "exists and is a folder"),
    ("notes.txt/picks.npy", "notes.txt is not a folder"),
])
def test_an_out_that_is_an_input_or_not_a_regular_file_is_refused_before_any_work(saved_pool, capsys, out,
                                                                                 message):
    folder, _, _ = saved_pool
    np.save(folder / "labeled.npy", np.arange(10))
    (folder / "notes.txt").write_text("not a folder")
    (folder / "sub").mkdir()
    os.link(folder / "features.npy", folder / "hard-link.npy")
    os.symlink(folder / "labeled.npy", folder / "link-to-labeled.npy")
    os.mkfifo(folder / "fifo")
    before = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(np, "load", _no_reading)
        patch.setattr(torch, "load", _no_reading)
        code = main(args(folder, "--exclude", str(folder / "labeled.npy"), out=out))
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    assert "--out: " in err and message in err
    assert {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()} == before
    assert stat.S_ISFIFO(os.stat(folder / "fifo").st_mode)  # never replaced


def _no_reading(*_, **__):
    raise AssertionError("an input file was read before the refusal")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs procfs (Linux), where no one may create files")
@pytest.mark.parametrize("out", ["/proc/picks.npy", "/proc/new-folder/picks.npy"])
def test_an_out_folder_that_cannot_be_written_is_refused_before_any_work(saved_pool, capsys, out):
    # /proc refuses new entries even to root, for whom permission bits would say yes.
    folder, _, _ = saved_pool
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(np, "load", _no_reading)
        code = main(args(folder, out=out))  # an absolute `out` replaces the folder
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    assert "--out: cannot " in err and "/proc" in err


@pytest.mark.parametrize("flag,value", [
    ("--timeout", "inf"), ("--timeout", "nan"), ("--timeout", "0"), ("--timeout", "-5"), ("--timeout", "0.5"),
    ("--budget", "0"), ("--max-iter", "-1"), ("--tol", "nan"), ("--tol", "-0.001"),
    ("--label-tol", "1.5"), ("--label-tol", "-0.1"), ("--label-tol", "nan"),
    ("--temperature", "0"), ("--temperature", "inf"), ("--seed", str(2**70)),
])
def test_a_bad_number_exits_2_naming_its_flag_before_any_work(saved_pool, capsys, flag, value):
    import torch.distributed as dist

    folder, _, _ = saved_pool

    def joined(*_, **__):
        raise AssertionError(f"joined the process group before checking {flag}")

    # Alone, then as rank 1 of 2 under torchrun (its environment), where a bad --timeout used to reach
    # init_process_group (a traceback or a C++ abort).
    for environment in ({}, dict(RANK="1", LOCAL_RANK="1", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                                 MASTER_PORT="1")):
        with pytest.MonkeyPatch.context() as patch:
            for name, setting in environment.items():
                patch.setenv(name, setting)
            patch.setattr(np, "load", _no_reading)
            patch.setattr(dist, "init_process_group", joined)
            code = main(args(folder, flag, value))
        err = capsys.readouterr().err
        assert code == EXIT_BAD_INPUT, err
        assert f"argument {flag}: must be" in err and repr(value) in err
        assert not (folder / "picks.npy").exists()


class _TouchesWhenLoaded:
    """Unpickled, it creates a file: the proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (Path(self.marker),)


@pytest.mark.parametrize("flag,content,message", [
    ("features", "npz", "is an .npz archive (np.savez), not one array"),
    ("probs", "npz", "is an .npz archive (np.savez), not one array"),
    ("exclude", "npz", "is an .npz archive (np.savez), not one array"),
    ("features", "pickle", "is a pickle, which is never loaded"),
    ("probs", "text", "is not a .npy file"),
    ("exclude", "pt-pickle", "cannot read"),
])
def test_a_file_that_is_not_what_its_name_says_exits_2_naming_the_flag(saved_pool, capsys, flag, content, message):
    folder, x, probs = saved_pool
    np.save(folder / "labeled.npy", np.arange(10))
    marker = folder / "loaded-a-pickle"
    name = "impostor.pt" if content == "pt-pickle" else "impostor.npy"
    with open(folder / name, "wb") as handle:
        if content == "npz":
            np.savez(handle, array=(x if flag == "features" else probs).numpy())
        elif content == "pickle":
            pickle.dump(_TouchesWhenLoaded(marker), handle)
        elif content == "text":
            handle.write(b"0.1,0.9\n")
        else:
            torch.save(_TouchesWhenLoaded(marker), handle)
    given = {**dict(features="features.npy", probs="probs.npy", exclude="labeled.npy"), flag: name}
    code = main(args(folder, "--exclude", str(folder / given["exclude"]), features=given["features"],
                     probs=given["probs"]))
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    assert f"--{flag}: " in err and message in err
    assert not marker.exists()
    assert not (folder / "picks.npy").exists()


def test_big_endian_npy_files_give_the_picks_of_native_ones(saved_pool):
    folder, x, probs = saved_pool
    labeled = np.arange(3, N, 11)
    np.save(folder / "features-be.npy", x.numpy().astype(">f4"))
    np.save(folder / "probs-be.npy", probs.numpy().astype(">f8"))
    np.save(folder / "labeled-be.npy", labeled.astype(">i8"))
    np.save(folder / "probs64.npy", probs.numpy().astype(np.float64))
    np.save(folder / "labeled.npy", labeled)
    assert main(args(folder, "--exclude", str(folder / "labeled.npy"), probs="probs64.npy")) == 0
    native = np.load(folder / "picks.npy")
    assert main(args(folder, "--exclude", str(folder / "labeled-be.npy"), features="features-be.npy",
                     probs="probs-be.npy", out="new/folder/picks.npy")) == 0
    assert np.load(folder / "new/folder/picks.npy").tolist() == native.tolist()


def test_fingerprint_sees_shape_dtype_and_sampled_rows_without_reading_the_rest(tmp_path):
    from clue_ext._saved_arrays import FINGERPRINT_ROWS, fingerprint, open_saved

    def seen(array, name="a.npy"):
        path = tmp_path / name
        torch.save(torch.from_numpy(array), path) if name.endswith(".pt") else np.save(path, array)
        return fingerprint(path, open_saved(path, "--features"))

    base = np.random.default_rng(0).standard_normal((1501, 4)).astype(np.float32)
    reference = seen(base)
    assert reference["shape"] == (1501, 4) and reference["dtype"] == "float32"
    assert reference["bytes"] == os.path.getsize(tmp_path / "a.npy")
    first_row_changed = base.copy()
    first_row_changed[0, 0] += 1
    assert seen(first_row_changed)["digest"] != reference["digest"]
    assert seen(base[:-1])["shape"] != reference["shape"]
    assert seen(base.astype(">f4"))["dtype"] == "float32 big-endian"
    # Cheap by design: a row between the sampled ones is not read.
    step = (1501 - 1) // (FINGERPRINT_ROWS - 1)
    unsampled_row_changed = base.copy()
    unsampled_row_changed[step // 2] += 1
    assert seen(unsampled_row_changed)["digest"] == reference["digest"]
    assert seen(base, "a.pt")["dtype"] == "float32"
    assert seen(base, "a.pt")["digest"] != seen(first_row_changed, "b.pt")["digest"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_write_removes_the_temporary_file(saved_pool, signum):
    folder, _, _ = saved_pool
    inputs = sorted(path.name for path in folder.iterdir())
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, str(DRIVER), "hold-write", "--", *args(folder)], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(240, process.kill)
    watchdog.start()
    try:
        line = process.stdout.readline()  # the driver says so once the temporary file is open
        assert line == "writing\n", process.communicate()[1]
        assert len(list(folder.glob("picks.npy.*.tmp"))) == 1
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
    assert process.returncode == 128 + signum, err
    assert f"clue-select: stopped by {signal.Signals(signum).name} (rank 0)" in err
    assert "Traceback" not in err
    assert sorted(path.name for path in folder.iterdir()) == inputs  # no picks.npy, no picks.npy.*.tmp


def driver(*argv, launcher=()):
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *launcher, str(DRIVER), *argv], capture_output=True, text=True,
                          timeout=300, env=environment)


@pytest.mark.slow
def test_under_torchrun_ranks_that_read_different_files_fail_alike_before_selecting(saved_pool):
    folder, x, probs = saved_pool
    # Rank 1 is given a shorter pool (features and probs that match each other) and another exclude list
    # of the same length: each run alone would pick; together they would select from a mixed pool.
    np.save(folder / "features-short.npy", x[:2000].numpy())
    np.save(folder / "probs-short.npy", probs[:2000].numpy())
    np.save(folder / "labeled.npy", np.arange(0, 1000, 10))
    np.save(folder / "labeled-other.npy", np.arange(1, 1001, 10))
    done = driver("1", "--features", str(folder / "features-short.npy"), "1", "--probs", str(folder / "probs-short.npy"),
                  "1", "--exclude", str(folder / "labeled-other.npy"), "--",
                  *args(folder, "--exclude", str(folder / "labeled.npy")), launcher=torchrun(2))
    assert done.returncode != 0
    for rank in (0, 1):
        assert f"clue-select: error (rank {rank}): the ranks do not read the same files" in done.stderr
    assert "--features: rank 0 sees 2400 x 72 float32" in done.stderr
    assert "rank 1 sees 2000 x 72 float32" in done.stderr
    assert "--probs: rank 0 sees 2400 x 6" in done.stderr and "rank 1 sees 2000 x 6" in done.stderr
    exclude_report = done.stderr.split("--exclude: ")[1].splitlines()[0]
    assert exclude_report.count("100 int64") == 2, exclude_report  # same length and dtype, other rows: the digest
    assert "selecting" not in done.stderr and "ranks; rank 0 holds" not in done.stderr
    assert not (folder / "picks.npy").exists()


def test_label_tol_reaches_select(saved_pool):
    folder, x, probs = saved_pool
    for value in ("0", "1"):
        assert main(args(folder, "--label-tol", value, out=f"picks-{value}.npy")) == 0
        want = clue_ext.select(x, probs, 30, seed=0, label_tol=float(value))
        assert np.array_equal(np.load(folder / f"picks-{value}.npy"), want.numpy())
    # The default is select's default; 1 (one Lloyd iteration) picks otherwise, so the flag is heard.
    assert main(args(folder)) == 0
    default = np.load(folder / "picks.npy")
    assert np.array_equal(default, clue_ext.select(x, probs, 30, seed=0).numpy())
    assert not np.array_equal(default, np.load(folder / "picks-1.npy"))
