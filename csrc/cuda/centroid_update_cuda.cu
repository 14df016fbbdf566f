// Weighted centroid update without atomics. The labels are sorted stably, so
// the points of each cluster form one segment in point order; one thread per
// (cluster, column) then sums its segment sequentially in double, exactly as
// the CPU kernel does, and the result does not depend on thread timing.

#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>

#include "../op_checks.h"
#include "cuda_utils.cuh"
#include "weighted_means_cuda.h"

namespace clue_ext {
namespace {

using cuda::Span;

constexpr int kColumnsPerBlock = 128;
constexpr int kBoundsThreads = 256;

// starts[c] = first position p of the sorted labels with sorted[p] >= c, for
// c in [0, k]; cluster c owns positions [starts[c], starts[c + 1]). Thread 0
// also records the first out-of-range label in `bad` = (found, value, point).
__global__ void segment_bounds_kernel(Span<const int64_t> sorted, Span<const int64_t> perm, int64_t n,
                                      int64_t k, Span<int64_t> starts, Span<int64_t> bad) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kBoundsThreads + threadIdx.x;
  if (c == 0) {
    const int64_t p = sorted[0] < 0 ? 0 : (sorted[n - 1] >= k ? n - 1 : -1);
    bad[0] = p >= 0;
    bad[1] = p >= 0 ? sorted[p] : 0;
    bad[2] = p >= 0 ? perm[p] : 0;
  }
  if (c > k) return;
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (sorted[mid] < c) lo = mid + 1;
    else hi = mid;
  }
  starts[c] = lo;
}

// Block (cluster c, column group): thread col sums w * x[:, col] over c's
// points in point order, mul then add (no fused multiply-add, like the CPU).
template <typename scalar_t>
__global__ void weighted_means_kernel(Span<const scalar_t> x, Span<const scalar_t> w, Span<const int64_t> perm,
                                      Span<const int64_t> starts, Span<const scalar_t> old_c, int64_t d,
                                      Span<scalar_t> new_c, Span<double> cluster_w) {
  const int64_t c = blockIdx.x;
  const int64_t col = static_cast<int64_t>(blockIdx.y) * kColumnsPerBlock + threadIdx.x;
  if (col >= d) return;
  double sum = 0.0, mass = 0.0;
  const int64_t end = starts[c + 1];
  for (int64_t p = starts[c]; p < end; ++p) {
    const int64_t i = perm[p];
    const double wi = static_cast<double>(w[i]);
    if (wi == 0.0) continue;
    sum = __dadd_rn(sum, __dmul_rn(wi, static_cast<double>(x[i * d + col])));
    mass = __dadd_rn(mass, wi);
  }
  new_c[c * d + col] = mass > 0.0 ? static_cast<scalar_t>(sum / mass) : old_c[c * d + col];
  if (col == 0) cluster_w[c] = mass;
}

} // namespace

namespace cuda {

std::tuple<at::Tensor, at::Tensor, at::Tensor> weighted_means(const at::Tensor& x, const at::Tensor& w,
                                                              const at::Tensor& labels, const at::Tensor& c) {
  const int64_t n = x.size(0), d = x.size(1), k = c.size(0);
  const int64_t column_blocks = ceil_div(d, kColumnsPerBlock);
  TORCH_CHECK_VALUE(column_blocks <= 65535, "x has ", d, " columns; the CUDA centroid update supports at most ",
                    int64_t{65535} * kColumnsPerBlock);

  // Stable: equal labels keep point order.
  at::Tensor sorted, perm;
  std::tie(sorted, perm) = at::sort(labels, /*stable=*/true, /*dim=*/0);
  at::Tensor starts = at::empty({k + 1}, labels.options());
  at::Tensor bad = at::empty({3}, labels.options());
  at::Tensor new_c = at::empty_like(c);
  at::Tensor cluster_w = at::empty({k}, x.options().dtype(at::kDouble));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  segment_bounds_kernel<<<blocks_for(k + 1, kBoundsThreads), kBoundsThreads, 0, stream>>>(
      in_span<int64_t>(sorted), in_span<int64_t>(perm), n, k, out_span<int64_t>(starts), out_span<int64_t>(bad));
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "centroid_update_cuda", [&] {
    const dim3 grid(static_cast<unsigned>(k), static_cast<unsigned>(column_blocks));
    weighted_means_kernel<scalar_t><<<grid, kColumnsPerBlock, 0, stream>>>(
        in_span<scalar_t>(x), in_span<scalar_t>(w), in_span<int64_t>(perm), in_span<int64_t>(starts),
        in_span<scalar_t>(c), d, out_span<scalar_t>(new_c), out_span<double>(cluster_w));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {new_c, cluster_w, bad};
}

} // namespace cuda

namespace {

std::tuple<at::Tensor, at::Tensor> centroid_update_cuda(const at::Tensor& x_in, const at::Tensor& w_in,
                                                        const at::Tensor& labels_in,
                                                        const at::Tensor& c_in) {
  check_update_args(x_in, w_in, labels_in, c_in);
  const at::cuda::CUDAGuard guard(x_in.device());
  auto [new_c, cluster_w, bad] =
      cuda::weighted_means(x_in.contiguous(), w_in.contiguous(), labels_in.contiguous(), c_in.contiguous());
  // The one host synchronisation of this op: out-of-range labels belong to
  // no segment, so the kernels are safe to run before the check.
  const at::Tensor bad_host = bad.cpu();
  const int64_t* b = bad_host.const_data_ptr<int64_t>();
  TORCH_CHECK_VALUE(b[0] == 0, "labels must be in [0, ", c_in.size(0), "), got ", b[1], " at position ", b[2]);
  return {new_c, cluster_w};
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CUDA, m) {
  m.impl("centroid_update", &centroid_update_cuda);
}

} // namespace clue_ext
