"""CUDA kernels against the CPU kernels, and torch.library.opcheck on each op.

The parity checks live in clue_ext.selftest (so that `python -m
clue_ext.selftest` runs the same ones on a user's GPU). Here they run
CUDA-vs-CPU, skipped visibly when no CUDA device is present, and
CPU-vs-reference, which needs no GPU and also checks the checks.
"""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

import clue_ext
from clue_ext import ops, reference, selftest
from clue_ext.selftest import (PARITY_CHECKS, Backend, ordered_centroid_update, random_problem, run_boundary_problem,
                               uniforms)

needs_cuda = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(not clue_ext.build_info()["cuda"], reason="clue_ext built without CUDA kernels"),
]
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]


def cuda_test(fn):
    """Marks a test as needing a CUDA device and a build with CUDA kernels."""
    for mark in reversed(needs_cuda):
        fn = mark(fn)
    return fn


def _ids(check):
    return check.__name__.replace("check_", "")


@pytest.mark.parametrize("check", PARITY_CHECKS, ids=_ids)
def test_cpu_kernels_match_reference(check):
    check(Backend(ops, "cpu"), Backend(reference, "cpu"))


@cuda_test
@pytest.mark.parametrize("check", PARITY_CHECKS, ids=_ids)
def test_cuda_kernels_match_cpu(check):
    check(Backend(ops, "cuda"), Backend(ops, "cpu"))


def test_build_info_names_the_compiled_archs():
    info = clue_ext.build_info()
    assert info["cuda"] == bool(info["cuda_archs"])
    if info["cuda"]:
        assert all(arch.strip() for arch in info["cuda_archs"].split(";")), info


@pytest.mark.parametrize("op", ["kmeanspp_seed", "assign", "centroid_update", "nearest_points", "lloyd"])
def test_cuda_kernels_are_registered_when_built(op):
    """Needs no GPU: a CUDA build registers a CUDA kernel for every op."""
    has_cuda = torch._C._dispatch_has_kernel_for_dispatch_key(f"clue_ext::{op}", "CUDA")
    assert has_cuda == clue_ext.build_info()["cuda"]


# --- several tiles and row blocks ---------------------------------------------------


@cuda_test
@pytest.mark.slow
def test_cuda_many_chunks_match_cpu():
    """N large enough for several GEMM tiles (assign, nearest_points) and many
    row blocks in the seeding's prefix sums."""
    cuda, cpu = Backend(ops, "cuda"), Backend(ops, "cpu")
    x, w = random_problem(140_000, 6, seed=21)
    k, trials = 24, 3
    u = uniforms(k, trials, seed=21)
    assert torch.equal(cuda("kmeanspp_seed", x, w, k, u, trials), cpu("kmeanspp_seed", x, w, k, u, trials))
    c = x[:16] + 0.01
    la, da = cuda("assign", x, c)
    lb, db = cpu("assign", x, c)
    assert torch.equal(la, lb)
    torch.testing.assert_close(da, db, rtol=1e-12, atol=1e-12)
    assert torch.equal(cuda("nearest_points", x, c), cpu("nearest_points", x, c))
    new_a, mass_a = cuda("centroid_update", x, w, lb, c)
    new_b, mass_b = cpu("centroid_update", x, w, lb, c)
    assert torch.equal(new_a, new_b) and torch.equal(mass_a, mass_b)


# --- end to end on the GPU -----------------------------------------------------------


@cuda_test
def test_cuda_weighted_kmeans_matches_cpu():
    x, w = random_problem(4000, 16, seed=22)
    a = clue_ext.weighted_kmeans(x.cuda(), w.cuda(), 30, seed=5)
    b = clue_ext.weighted_kmeans(x, w, 30, seed=5)
    assert a.centroids.is_cuda and a.labels.is_cuda
    assert torch.equal(a.labels.cpu(), b.labels)
    torch.testing.assert_close(a.centroids.cpu(), b.centroids, rtol=1e-10, atol=1e-10)
    assert a.inertia == pytest.approx(b.inertia, rel=1e-10)
    assert a.n_iter == b.n_iter


@cuda_test
def test_cuda_fast_init_projects_like_the_cpu():
    # Rank-4 structure in 96 features: the default init takes the projected
    # warm start (covariance on the device, eigenvectors on the CPU).
    g = torch.Generator().manual_seed(24)
    x = torch.relu(torch.randn(5000, 4, generator=g, dtype=torch.float64)
                   @ torch.randn(4, 96, generator=g, dtype=torch.float64)
                   + 0.2 * torch.randn(5000, 96, generator=g, dtype=torch.float64))
    w = torch.rand(5000, generator=g, dtype=torch.float64)
    a = clue_ext.weighted_kmeans(x.cuda(), w.cuda(), 40, seed=6)
    b = clue_ext.weighted_kmeans(x, w, 40, seed=6)
    assert torch.equal(a.labels.cpu(), b.labels)
    torch.testing.assert_close(a.centroids.cpu(), b.centroids, rtol=1e-9, atol=1e-9)


@cuda_test
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_select_end_to_end(dtype):
    x, _ = random_problem(3000, 24, dtype=dtype, seed=23)
    probs = torch.softmax(torch.randn(3000, 7, generator=torch.Generator().manual_seed(23)), dim=1)
    exclude = torch.arange(0, 3000, 7)
    picks = clue_ext.select(x.cuda(), probs.cuda(), 100, seed=3, exclude=exclude)
    assert picks.is_cuda and picks.dtype == torch.long
    selftest._assert_distinct(picks.cpu(), 3000, "select")
    assert not bool(torch.isin(picks.cpu(), exclude).any())
    if dtype == torch.float64:
        assert torch.equal(picks.cpu(), clue_ext.select(x, probs, 100, seed=3, exclude=exclude))


@cuda_test
def test_cuda_seeding_and_assign_never_synchronise():
    """The seeding loop and the assignment enqueue work only: any host
    synchronisation inside them raises in sync-debug mode."""
    x, w = random_problem(5000, 12, dtype=torch.float32, seed=24)
    x, w = x.cuda(), w.cuda()
    u = uniforms(40, 3, seed=24).cuda()
    f = x[:, :4].contiguous()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        idx = torch.ops.clue_ext.kmeanspp_seed(x, w, 40, u, 3)
        torch.ops.clue_ext.kmeanspp_seed(x, w, 40, u, 3, f)
        labels, _ = torch.ops.clue_ext.assign(x, x.index_select(0, idx))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    selftest._assert_distinct(idx.cpu(), 5000, "kmeanspp_seed")
    assert int(labels.max()) < 40


@cuda_test
def test_cuda_accepts_non_contiguous_inputs():
    x, w = random_problem(500, 9, seed=25)
    xt = x.t().contiguous().cuda().t()  # (500, 9), column-major
    c = x[:20].cuda()
    la, da = ops.assign(xt, c)
    lb, db = ops.assign(x, x[:20])
    assert torch.equal(la.cpu(), lb)
    torch.testing.assert_close(da.cpu(), db)
    labels = lb.cuda()
    ca, _ = ops.centroid_update(xt, w.cuda()[::1], labels, c)
    cb, _ = ops.centroid_update(x, w, lb, x[:20])
    assert torch.equal(ca.cpu(), cb)
    assert torch.equal(ops.nearest_points(xt, c).cpu(), ops.nearest_points(x, x[:20]))


@cuda_test
def test_cuda_rejects_bad_arguments_like_cpu():
    x, w = random_problem(50, 4, seed=26)
    u = uniforms(5, 2)
    nan_w = w.clone()
    nan_w[3] = float("nan")
    two_bad = torch.zeros(50, dtype=torch.long)
    two_bad[[9, 30]] = torch.tensor([5, -1])
    cases = [
        ("kmeanspp_seed", (x, w, 0, uniforms(1, 2)[:0], 2)),
        ("kmeanspp_seed", (x, w, 5, u[:-1], 2)),
        ("kmeanspp_seed", (x, w.float(), 5, u, 2)),
        ("assign", (x[None], x[:3])),
        ("assign", (x, x[:3, :2])),
        ("centroid_update", (x, w, torch.full((50,), 3), x[:3])),
        ("centroid_update", (x, w, torch.full((50,), -1), x[:3])),
        ("centroid_update", (x, w, two_bad, x[:3])),
        ("centroid_update", (x, nan_w, torch.zeros(50, dtype=torch.long), x[:3])),
        ("lloyd", (x, nan_w, x[:3], 5, 0.0)),
        ("lloyd", (x, w, x[:3], -1, 0.0)),
        ("nearest_points", (x, x[:10], torch.ones(50, dtype=torch.bool))),
    ]
    for op, args in cases:
        errors = []
        for device in ("cpu", "cuda"):
            moved = [a.to(device) if isinstance(a, torch.Tensor) else a for a in args]
            with pytest.raises((ValueError, TypeError)) as info:
                getattr(ops, op)(*moved)
            errors.append((info.type, str(info.value).split("\n")[0]))
        assert errors[0] == errors[1], (op, errors)


@cuda_test
def test_cuda_ops_ignore_torch_tf32_setting():
    """TF32 keeps about 10 bits of a float32 mantissa; the ops' GEMMs must not
    follow a training script that turned it on."""
    x, w = random_problem(6000, 96, dtype=torch.float32, seed=27, clusters=40)
    x, w = x.cuda(), w.cuda()
    c = x[:64].clone()
    u = uniforms(64, 3).cuda()

    def run_ops():
        return [*ops.assign(x, c), ops.nearest_points(x, c), ops.kmeanspp_seed(x, w, 64, u, 3),
                *ops.lloyd(x, w, c, 30, 0.0)]

    full = run_ops()
    saved = torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
        reduced = run_ops()
        assert torch.backends.cuda.matmul.allow_tf32, "the ops changed torch's global setting"
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved[0]
        torch.set_float32_matmul_precision(saved[1])
    for a, b in zip(full, reduced):
        assert torch.equal(a, b)


@cuda_test
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_centroid_update_is_bitwise_the_cpus_across_runs(dtype):
    """README: the CPU and CUDA centroid updates are bitwise equal. Clusters of
    1 to 1,300 members, zero weights at the edges of the runs of 256."""
    x, w, labels, old = run_boundary_problem(dtype)
    means, mass = ops.centroid_update(x.cuda(), w.cuda(), labels.cuda(), old.cuda())
    cpu_means, cpu_mass = ops.centroid_update(x, w, labels, old)
    ordered_means, ordered_mass = ordered_centroid_update(x, w, labels, old)
    assert torch.equal(mass.cpu(), cpu_mass) and torch.equal(mass.cpu(), ordered_mass)
    assert torch.equal(means.cpu(), cpu_means) and torch.equal(means.cpu(), ordered_means)


# Runs in a fresh interpreter per TF32 API: torch refuses to read a setting
# through one API once it was written through the other, and a test must not
# leave TF32 on for the tests after it.
_TF32_PICKS = textwrap.dedent(r"""
    import json, sys
    import torch
    import clue_ext
    from clue_ext import warm_start
    from clue_ext._precision import full_float32_matmuls

    api = sys.argv[1]
    g = torch.Generator().manual_seed(31)
    n, d = 20_000, 96
    # Low-rank features (6 directions) plus noise: the "fast" init projects.
    x = torch.randn(n, 6, generator=g) @ torch.randn(6, d, generator=g) + 0.1 * torch.randn(n, d, generator=g)
    probs = torch.softmax(2.0 * torch.randn(n, 10, generator=g), dim=1)
    w = torch.rand(n, generator=g)
    x, probs, w = x.cuda(), probs.cuda(), w.cuda()
    mean, directions, share = warm_start.weighted_principal_directions(x[:4096], w[:4096], warm_start.PROJECTION_DIMS)
    offset = mean @ directions


    def run():
        return {
            "select": clue_ext.select(x, probs, 300, seed=4, init="fast").tolist(),
            "kmeans": clue_ext.weighted_kmeans(x, w, 120, seed=5, init="fast").labels.tolist(),
        }


    def projection():  # the warm start's GEMM, as warm_start.projected_lloyd_start runs it
        return torch.addmm(offset, x, directions, beta=-1)


    off, projection_off = run(), projection()
    if api == "legacy":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
    else:
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    projection_tf32 = projection()
    with full_float32_matmuls(x.device):
        projection_guarded = projection()
    on = run()
    if api == "legacy":
        reads = [torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()]
    else:
        reads = [torch.backends.cuda.matmul.fp32_precision]
    print(json.dumps({
        "projects": warm_start.worth_projecting(d, 120) and share >= warm_start.MIN_VARIANCE_SHARE,
        "tf32_changes_the_gemm": not torch.equal(projection_tf32, projection_off),
        "guard_restores_the_gemm": torch.equal(projection_guarded, projection_off),
        "select_changed": sum(a != b for a, b in zip(off["select"], on["select"])),
        "kmeans_changed": sum(a != b for a, b in zip(off["kmeans"], on["kmeans"])),
        "reads": reads,
    }))
""")


@cuda_test
@pytest.mark.parametrize("api", ["legacy", "new"])
def test_cuda_tf32_on_changes_no_pick(api):
    """A script that turned TF32 on (allow_tf32 and set_float32_matmul_precision,
    or fp32_precision) gets the picks of full float32, and reads its setting
    back unchanged through the API it used."""
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("TF32 needs an Ampere or newer GPU")
    done = subprocess.run([sys.executable, "-c", _TF32_PICKS, api], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["projects"], "the data must take the projected warm start"
    assert result["tf32_changes_the_gemm"], "TF32 did not take effect: the test would prove nothing"
    assert result["guard_restores_the_gemm"]
    assert result["select_changed"] == 0 and result["kmeans_changed"] == 0, result
    assert result["reads"] == ([True, "high"] if api == "legacy" else ["tf32"])


# --- torch.library.opcheck -----------------------------------------------------------


def _samples(device):
    x, w = random_problem(300, 7, seed=27)
    f, _ = random_problem(300, 3, seed=28)
    x, w, f = x.to(device), w.to(device), f.to(device)
    u = uniforms(12, 3, seed=27).to(device)
    c = x[:12].clone()
    labels = torch.arange(300, device=device) % 12
    exclude = torch.zeros(300, dtype=torch.bool, device=device)
    exclude[::3] = True
    return {
        "kmeanspp_seed": (torch.ops.clue_ext.kmeanspp_seed.default, (x, w, 12, u, 3), {}),
        "kmeanspp_seed_factor": (torch.ops.clue_ext.kmeanspp_seed.default, (x, w, 12, u, 3), {"x_factor": f}),
        "assign": (torch.ops.clue_ext.assign.default, (x, c), {}),
        "centroid_update": (torch.ops.clue_ext.centroid_update.default, (x, w, labels, c), {}),
        "nearest_points": (torch.ops.clue_ext.nearest_points.default, (x, c), {}),
        "nearest_points_exclude": (torch.ops.clue_ext.nearest_points.default, (x, c), {"exclude": exclude}),
    }


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(_samples("cpu")))
def test_opcheck(name, device):
    op, args, kwargs = _samples(device)[name]
    torch.library.opcheck(op, args, kwargs)
