// Weighted centroid update without atomics, in the summation order of
// summation_order.h. The labels are sorted stably, so the members of each
// cluster form one segment in point order. The segments are cut into runs
// of kMeansRun members; one thread per (run, column) sums its run
// sequentially in double, so a large cluster is summed by many threads at
// once; then one thread per (cluster, column) adds its runs' sums in order.

#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "../op_checks.h"
#include "../summation_order.h"
#include "cuda_utils.cuh"
#include "weighted_means_cuda.h"

namespace clue_ext {
namespace {

using cuda::Span;

constexpr int kThreads = 128;  // a power of two (column_groups divides it)

// starts[c] = first position p of the sorted labels with sorted[p] >= c, for
// c in [0, k]; cluster c owns positions [starts[c], starts[c + 1]). Labels
// out of [0, k) fall outside every segment.
__global__ void segment_bounds_kernel(Span<const int64_t> sorted, int64_t n, int64_t k, Span<int64_t> starts) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kThreads + cuda::thread_x();
  if (c > k) return;
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (sorted[mid] < c) lo = mid + 1;
    else hi = mid;
  }
  starts[c] = lo;
}

// A block holds kThreads / group threads per column group of `group`
// columns: small D packs several runs (or clusters) into one block.
struct ColumnGroups {
  int group;      // columns per group: 32, 64 or kThreads, so that it divides kThreads
  int64_t count;  // groups covering the D columns
};

ColumnGroups column_groups(int64_t d) {
  int group = cuda::kWarp;
  while (group < d && group < kThreads) group *= 2;
  return {group, cuda::ceil_div(d, group)};
}

// Thread (slot, col) of block b handles item b / groups * slots + slot and
// column (b % groups) * group + col, for an item dimension (runs, clusters).
struct Slot {
  int64_t item;
  int64_t col;
};

__device__ __forceinline__ Slot slot_of(int group, int64_t groups) {
  const int64_t slots = kThreads / group;
  const int64_t block = blockIdx.x;
  return {(block / groups) * slots + cuda::thread_x() / group,
          (block % groups) * group + cuda::thread_x() % group};
}

// Run r belongs to the cluster c with run_starts[c] <= r < run_starts[c + 1];
// run_starts[k] is the number of runs. Each thread sums w * x[:, col] over
// the run's members in point order, multiply then add (no fused
// multiply-add, like the CPU), and the run's weight.
template <typename scalar_t>
__global__ void run_sums_kernel(Span<const scalar_t> x, Span<const scalar_t> w, Span<const int64_t> perm,
                                Span<const int64_t> starts, Span<const int64_t> run_starts, int64_t k,
                                int64_t d, int group, int64_t groups, Span<double> run_sum,
                                Span<double> run_mass) {
  const Slot s = slot_of(group, groups);
  const int64_t r = s.item;
  if (r >= run_starts[k] || s.col >= d) return;
  int64_t lo = 0, hi = k;  // the last c with run_starts[c] <= r
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (run_starts[mid] <= r) lo = mid;
    else hi = mid;
  }
  const int64_t begin = starts[lo] + (r - run_starts[lo]) * kMeansRun;
  const int64_t end = std::min(starts[lo + 1], begin + kMeansRun);
  double sum = 0.0, mass = 0.0;
  for (int64_t p = begin; p < end; ++p) {
    const int64_t i = perm[p];
    const double wi = static_cast<double>(w[i]);
    if (wi == 0.0) continue;
    sum = __dadd_rn(sum, __dmul_rn(wi, static_cast<double>(x[i * d + s.col])));
    mass = __dadd_rn(mass, wi);
  }
  run_sum[r * d + s.col] = sum;
  if (s.col == 0) run_mass[r] = mass;
}

// Each thread adds the sums of cluster c's runs, in run order, for one column
// (intrinsics, so that nvcc's default --fmad=true cannot fuse anything here).
template <typename scalar_t>
__global__ void run_means_kernel(Span<const double> run_sum, Span<const double> run_mass,
                                 Span<const int64_t> run_starts, Span<const scalar_t> old_c, int64_t k, int64_t d,
                                 int group, int64_t groups, Span<scalar_t> new_c, Span<double> cluster_w) {
  const Slot s = slot_of(group, groups);
  const int64_t c = s.item;
  if (c >= k || s.col >= d) return;
  double sum = 0.0, mass = 0.0;
  for (int64_t r = run_starts[c]; r < run_starts[c + 1]; ++r) {
    sum = __dadd_rn(sum, run_sum[r * d + s.col]);
    mass = __dadd_rn(mass, run_mass[r]);
  }
  // IEEE division and round-to-nearest conversion, as on the CPU.
  new_c[c * d + s.col] = mass > 0.0 ? static_cast<scalar_t>(__ddiv_rn(sum, mass)) : old_c[c * d + s.col];
  if (s.col == 0) cluster_w[c] = mass;
}

} // namespace

namespace cuda {

std::tuple<at::Tensor, at::Tensor> weighted_means(const at::Tensor& x, const at::Tensor& w, const at::Tensor& labels,
                                                  const at::Tensor& c) {
  const int64_t n = x.size(0), d = x.size(1), k = c.size(0);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  at::Tensor sorted, perm;
  std::tie(sorted, perm) = at::sort(labels, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  at::Tensor starts = at::empty({k + 1}, labels.options());
  segment_bounds_kernel<<<blocks_for(k + 1, kThreads), kThreads, 0, stream>>>(in_span<int64_t>(sorted), n, k,
                                                                                 out_span<int64_t>(starts));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  // run_starts[c] = runs of the clusters before c; the total stays on the
  // device, so the grids below are sized by its bound n / kMeansRun + k.
  const at::Tensor members = starts.narrow(0, 1, k) - starts.narrow(0, 0, k);
  const at::Tensor runs = at::div(members + (kMeansRun - 1), kMeansRun, "floor");
  const at::Tensor run_starts = at::cat({at::zeros({1}, runs.options()), at::cumsum(runs, 0)});
  const int64_t max_runs = n / kMeansRun + k;
  at::Tensor run_sum = at::empty({max_runs, d}, x.options().dtype(at::kDouble));
  at::Tensor run_mass = at::empty({max_runs}, x.options().dtype(at::kDouble));
  at::Tensor new_c = at::empty_like(c);
  at::Tensor cluster_w = at::empty({k}, x.options().dtype(at::kDouble));

  const ColumnGroups cols = column_groups(d);
  const int64_t slots = kThreads / cols.group;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "centroid_update_cuda", [&] {
    run_sums_kernel<scalar_t><<<blocks_for(ceil_div(max_runs, slots) * cols.count, 1), kThreads, 0, stream>>>(
        in_span<scalar_t>(x), in_span<scalar_t>(w), in_span<int64_t>(perm), in_span<int64_t>(starts),
        in_span<int64_t>(run_starts), k, d, cols.group, cols.count, out_span<double>(run_sum),
        out_span<double>(run_mass));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    run_means_kernel<scalar_t><<<blocks_for(ceil_div(k, slots) * cols.count, 1), kThreads, 0, stream>>>(
        in_span<double>(run_sum), in_span<double>(run_mass), in_span<int64_t>(run_starts), in_span<scalar_t>(c), k,
        d, cols.group, cols.count, out_span<scalar_t>(new_c), out_span<double>(cluster_w));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {new_c, cluster_w};
}

} // namespace cuda

namespace {

// The first position (lowest index) whose label is out of [0, k), as the CPU
// reports it. The one host synchronisation of this op.
void check_label_range(const at::Tensor& labels, int64_t k) {
  const at::Tensor bad = at::logical_or(labels < 0, labels >= k);
  const at::Tensor first = at::argmax(bad.to(at::kInt));  // the first maximum
  const at::Tensor found =
      at::stack({bad.any().to(at::kLong), first, labels.index_select(0, first.reshape({1})).squeeze(0)}).cpu();
  const int64_t* f = found.const_data_ptr<int64_t>();
  TORCH_CHECK_VALUE(f[0] == 0, "labels must be in [0, ", k, "), got ", f[2], " at position ", f[1]);
}

std::tuple<at::Tensor, at::Tensor> centroid_update_cuda(const at::Tensor& x_in, const at::Tensor& w_in,
                                                        const at::Tensor& labels_in,
                                                        const at::Tensor& c_in) {
  check_update_args(x_in, w_in, labels_in, c_in);
  const at::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor labels = labels_in.contiguous();
  check_label_range(labels, c_in.size(0));
  return cuda::weighted_means(x_in.contiguous(), w_in.contiguous(), labels, c_in.contiguous());
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CUDA, m) {
  m.impl("centroid_update", &centroid_update_cuda);
}

} // namespace clue_ext
