#pragma once

// The contract of every clue_ext op. Each function below calls through the
// torch dispatcher, so it runs the CPU or the CUDA kernel depending on where
// its tensors live. The same schemas are what Python sees as
// torch.ops.clue_ext.<name>.
//
// Shared conventions
// - `x` is an (N, D) floating tensor (float32 or float64), N >= 1, D >= 1.
//   Every other floating argument must have the same dtype and device as `x`.
// - Squared Euclidean distances are used throughout. Where an op ranks
//   distances it computes them as ||x||^2 - 2 x.c + ||c||^2 from a GEMM tile,
//   clamped at 0; ties are broken by (distance, index): the lowest index wins.
// - Sums of weights and costs are accumulated in double.
// - Weights must be finite and >= 0. centroid_update and lloyd raise a
//   ValueError otherwise, and so does kmeanspp_seed on the CPU; the CUDA
//   seeding does not look (that would cost a host synchronisation), so its
//   callers must (clue_ext's public functions check every weight).
// - The CUDA kernels run their float32 GEMMs in full float32 precision
//   whatever torch's TF32 setting (allow_tf32, set_float32_matmul_precision)
//   says, so the picks do not drift from the CPU's.
// - Randomness enters as pre-drawn uniforms, so CPU and CUDA pick the same
//   indices for the same draws.

#include <ATen/Tensor.h>

#include <optional>
#include <string>
#include <tuple>

namespace clue_ext {

// Weighted greedy K-Means++ seeding.
//
//   x            (N, D) points. If `x_factor` (N, E) is given, the points are
//                the rows of the outer products x[i] (x) x_factor[i] (N, D*E),
//                which are never materialised: their inner products factorise
//                as <x_i, x_j> * <f_i, f_j> (BADGE's gradient embeddings).
//   weights      (N,) non-negative sample weights.
//   k            number of centres, 1 <= k <= N.
//   uniforms     (1 + (k-1) * n_local_trials,) float64 draws in [0, 1).
//                uniforms[0] picks the first centre; uniforms[1 + (j-1)*T + t]
//                picks candidate t of centre j.
//   n_local_trials  T >= 1 candidates per centre (scikit-learn uses
//                2 + floor(ln k)); T = 1 is plain K-Means++.
//
// The first centre is the first index i with cumsum(w)[i] > u * sum(w). Each
// next centre draws T candidates the same way from cumsum(w * D^2), where D^2
// is a point's squared distance to its nearest centre so far, and keeps the
// candidate whose weighted potential sum(w * min(D^2, d^2(x, cand))) is lowest
// (ties: the earlier candidate).
// Never returns an index twice: a chosen point has D^2 = 0 exactly, so it
// carries no mass. When no mass is left (duplicates, zero weights, k larger
// than the number of distinct points), the candidates are drawn uniformly
// from the points not yet chosen, preferring points of positive weight.
// If every weight is zero the first centre is drawn uniformly.
// Returns int64 (k,) indices into x, in the order they were chosen.
at::Tensor kmeanspp_seed(
    const at::Tensor& x,
    const at::Tensor& weights,
    int64_t k,
    const at::Tensor& uniforms,
    int64_t n_local_trials,
    const std::optional<at::Tensor>& x_factor = std::nullopt);

// Nearest centroid of every point.
//
//   x           (N, D) points.
//   centroids   (K, D), K >= 1.
// Returns (labels int64 (N,), sq_dists (N,) of x's dtype). The argmin runs
// on GEMM-expanded distances, chunk by chunk, so memory is O(chunk * K) and
// not O(N * K); ties go to the lowest centroid index. sq_dists[i] is then
// recomputed exactly as sum_d (x[i,d] - c[label,d])^2, so inertia built from
// it has no cancellation error.
std::tuple<at::Tensor, at::Tensor> assign(
    const at::Tensor& x,
    const at::Tensor& centroids);

// Weighted centroid update (the M-step of weighted K-Means).
//
//   x           (N, D) points.
//   weights     (N,) non-negative sample weights.
//   labels      int64 (N,) cluster of each point, each in [0, K).
//   centroids   (K, D) current centroids; defines K.
// Returns (new_centroids (K, D), cluster_weights float64 (K,)) where
// new_centroids[k] = sum_{labels==k} w x / sum_{labels==k} w, accumulated in
// double. A cluster whose total weight is not > 0 (no points, or only
// zero-weight points) keeps its row of `centroids` unchanged; the caller
// decides whether to relocate it. The sums follow one fixed order
// (summation_order.h): each cluster's members in point order, in runs of
// kMeansRun = 256 summed sequentially (multiply, then add), the runs' sums
// then added in order. So the result is bitwise identical for any thread
// count, and the CPU and CUDA kernels do the same arithmetic. An
// out-of-range label raises a ValueError naming the first such position.
std::tuple<at::Tensor, at::Tensor> centroid_update(
    const at::Tensor& x,
    const at::Tensor& weights,
    const at::Tensor& labels,
    const at::Tensor& centroids);

// Weighted Lloyd iterations from `centroids` (the loop of scikit-learn's
// KMeans, with the assign and centroid_update contracts above).
//
//   x           (N, D) points.
//   weights     (N,) non-negative sample weights.
//   centroids   (K, D) starting centroids, K <= N.
//   max_iter    >= 0 iterations at most.
//   tol         >= 0 absolute tolerance on the total squared centre shift.
// Each iteration assigns every point to its nearest centroid (ties: lowest
// index) and moves each centroid to the weighted mean of its points. A
// cluster left with total weight not > 0 is moved onto the point of
// positive weight with the largest w * d^2, d the exact distance (from
// differences) of the point to its centroid before the update; one point per
// such cluster, in cluster order, ties to the lower point index. The loop stops when the labels repeat (the centroids are then the
// means of the returned labels), when the total squared shift is <= tol, or,
// with label_tol in (0, 1], when the labels that changed in an iteration
// carry at most label_tol of the weight; in the latter two cases a last
// assignment makes the labels match the returned centroids. The weight of
// the changed labels is counted exactly, in quanta: each point counts
// floor(w / max(w) * 2^20) (weight_quanta in weight_quanta.h), so every
// device, thread count and sharding stops at the same iteration.
// Returns (centroids (K, D), labels int64 (N,), sq_dists (N,) computed
// exactly from differences, n_iter int64 0-d). The centroids are a new
// tensor even when max_iter == 0.
// On the CPU the assignments are bounded (cpu/bounded_assign.h): each point
// keeps an upper bound on its distance to its label and lower bounds to the
// other centroids (per centroid while their N x K floats fit in the bytes of
// x, else per group of about 10 nearby centroids), moved by each centroid's
// drift; only points whose bounds cannot settle their label are measured.
// Labels are as `assign`'s up to rounding of near-ties.
// lloyd_distance_counts() -> int[] (CPU, a diagnostic): the number of
// point-centroid distances each assignment of the last CPU `lloyd` call in
// this process computed (the first is N * K).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lloyd(
    const at::Tensor& x,
    const at::Tensor& weights,
    const at::Tensor& centroids,
    int64_t max_iter,
    double tol,
    double label_tol = 0.0);

// LloydAssigner (a torch custom class, torch.classes.clue_ext.LloydAssigner;
// CPU only): the assignment step of the CPU `lloyd` loop, for callers that
// run the rest of the loop themselves (the sharded select, which all-reduces
// the cluster sums between steps).
//
//   LloydAssigner(x, k)     x (N, D) float32/float64 CPU points, kept; k >= 1.
//   assign(centroids, drift) -> labels int64 (N,)
//                           centroids (K, D) like x; drift float64 (K,) CPU
//                           tensor (a ValueError otherwise): how
//                           far each centroid moved since the previous call
//                           (ignored on the first call). Labels are exact
//                           nearest centroids, as `assign`'s, up to rounding of
//                           near-ties: rows whose bounds prove their label
//                           cannot have changed are not measured, so a wrong
//                           drift gives wrong labels.
//   sq_dists(centroids) -> (N,) exact squared distance of each point to its
//                           label's row of `centroids` (from differences).
//   distances() -> int      point-centroid distances the last assign computed.
// Holds the bounds of the CPU `lloyd` above: N * K floats when they fit in
// the bytes of x, else N * (about K / 10, capped to fit) floats, plus O(N).

// NoTF32Scope (a torch custom class, torch.classes.clue_ext.NoTF32Scope; in
// CPU-only builds too): full float32 precision for torch's own GEMMs, by the
// guard the CUDA ops hold (ATen's thread-local at::NoTF32Guard). For the
// GEMMs the select path runs in torch (warm start, sharded nearest-point
// lists), which would otherwise follow a script's TF32 setting.
//
//   NoTF32Scope()           opens the guard on the calling thread. torch's
//                           TF32 settings are neither read nor written, so
//                           the legacy (allow_tf32, set_float32_matmul_
//                           precision) and new (fp32_precision) APIs cannot
//                           clash, and the caller's setting reads back the
//                           same afterwards. Nested scopes (and the ops'
//                           guards inside one) leave the flag to the
//                           outermost.
//   close()                 releases the guard; idempotent. Must run on the
//                           opening thread (a RuntimeError otherwise). If
//                           close() is never called, the destructor releases
//                           the guard, on the opening thread only: collected
//                           on another thread, it leaves the opening
//                           thread's flag set (full float32 GEMMs there).
//   NoTF32Scope.tf32_disabled() (static) -> whether the calling thread's
//                           flag is set (at::NoTF32Guard::should_disable_tf32).
// The flag is honoured where cuBLAS handles are set up
// (at::cuda::getCurrentCUDABlasHandle), which serves float32 mm/addmm/bmm
// under torch's default BLAS backend. torch's cuBLASLt paths
// (preferred_blas_library("cublaslt"), and addmm's fused-bias path with beta
// 1) read the TF32 setting alone, as of torch 2.14.

// Distinct nearest point of each centroid.
//
//   x           (N, D) points.
//   centroids   (K, D).
//   exclude     optional bool (N,) mask of points that may not be returned.
// Requires K <= N - (number of excluded points).
// Centroids are served in order: centroid j gets its nearest point (by
// (distance, index)) that is neither excluded nor taken by centroids 0..j-1.
// Distances within rounding of each other may rank either way.
// Returns int64 (K,) distinct indices into x.
at::Tensor nearest_points(
    const at::Tensor& x,
    const at::Tensor& centroids,
    const std::optional<at::Tensor>& exclude = std::nullopt);

// nearest_points_labelled(x, centroids, labels, exclude=None, scatter_cost=4)
// (CPU; registered by cpu/nearest_points_cpu.cpp): the picks of
// nearest_points, found from `labels` (int64 (N,), each in [0, K); Lloyd's
// final labels make it cheap, any labels keep it exact): a point at distance
// r from its label's centroid a is at least d(a, j) - r from centroid j, so
// only points for which that does not rule out j's 8 nearest are measured
// against j. When those candidates exceed N * K / scatter_cost it takes
// nearest_points' full pass instead (scatter_cost 0: never).

// mean_feature_variance(x) -> float (CPU; registered by
// cpu/feature_variance_cpu.cpp): the mean over columns of each column's
// biased variance, np.var(x, axis=0).mean(), for (N, D) float32/float64 x
// (0.0 when empty). Rows are centred on their column means and everything is
// accumulated in double (no cancellation far from the origin; inf when the
// squares leave double's range), over fixed blocks of rows added in order,
// so the result does not depend on the thread count. Scales Lloyd's `tol`.

// JSON describing the build: whether CUDA kernels were compiled, for which
// architectures, against which torch and CUDA versions.
std::string build_info();

} // namespace clue_ext
