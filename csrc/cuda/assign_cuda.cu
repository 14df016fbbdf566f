// Nearest centroid of every point: x.c^T tiles from cuBLAS (through ATen),
// each followed by an argmin kernel that also recomputes the chosen squared
// distance exactly from differences.

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../op_checks.h"
#include "cuda_utils.cuh"

namespace clue_ext {
namespace {

using cuda::Span;

constexpr int kWarpsPerBlock = 8;
constexpr int64_t kMaxTileRows = int64_t{1} << 16;

// One warp per row r of the tile (point i = row0 + r): argmin over the K
// expanded distances, clamped at 0, ties to the lowest index; then
// sum_d (x[i,d] - c[label,d])^2 in double.
template <typename scalar_t>
__global__ void assign_kernel(Span<const scalar_t> x, Span<const scalar_t> c, Span<const scalar_t> tile,
                              Span<const double> c_norms, int64_t row0, int64_t rows, int64_t k,
                              int64_t d, Span<int64_t> labels, Span<scalar_t> sq_dists) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + cuda::warp_id();
  const int lane = cuda::lane_id();
  if (r >= rows) return;  // uniform over the warp
  const int64_t i = row0 + r;

  double x_norm = 0.0;
  for (int64_t col = lane; col < d; col += cuda::kWarp) {
    const double v = static_cast<double>(x[i * d + col]);
    x_norm += v * v;
  }
  x_norm = cuda::warp_sum(x_norm);

  double best = INFINITY;
  int64_t best_j = cuda::kNoIndex;
  for (int64_t j = lane; j < k; j += cuda::kWarp) {
    const double v = fmax(0.0, x_norm + c_norms[j] - 2.0 * static_cast<double>(tile[r * k + j]));
    if (cuda::before(v, j, best, best_j)) {
      best = v;
      best_j = j;
    }
  }
  cuda::warp_argmin(best, best_j);

  double exact = 0.0;
  for (int64_t col = lane; col < d; col += cuda::kWarp) {
    const double v = static_cast<double>(x[i * d + col]) - static_cast<double>(c[best_j * d + col]);
    exact += v * v;
  }
  exact = cuda::warp_sum(exact);
  if (lane == 0) {
    labels[i] = best_j;
    sq_dists[i] = static_cast<scalar_t>(exact);
  }
}

std::tuple<at::Tensor, at::Tensor> assign_cuda(const at::Tensor& x_in, const at::Tensor& c_in) {
  check_assign_args(x_in, c_in);
  const at::cuda::CUDAGuard guard(x_in.device());
  const at::NoTF32Guard full_float32;  // the distance GEMMs ignore torch's TF32 setting
  const at::Tensor x = x_in.contiguous();
  const at::Tensor c = c_in.contiguous();
  const int64_t n = x.size(0), d = x.size(1), k = c.size(0);
  at::Tensor labels = at::empty({n}, x.options().dtype(at::kLong));
  at::Tensor sq_dists = at::empty({n}, x.options());
  const at::Tensor c_norms = cuda::row_sq_norms(c);
  const int64_t chunk = cuda::tile_rows(n, k, x.element_size(), kMaxTileRows);
  at::Tensor tile = at::empty({chunk, k}, x.options());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "assign_cuda", [&] {
    for (int64_t row0 = 0; row0 < n; row0 += chunk) {
      const int64_t m = std::min(chunk, n - row0);
      at::Tensor t = tile.narrow(0, 0, m);
      at::mm_out(t, x.narrow(0, row0, m), c.t());
      assign_kernel<scalar_t><<<cuda::blocks_for(m, kWarpsPerBlock), kWarpsPerBlock * cuda::kWarp, 0, stream>>>(
          cuda::in_span<scalar_t>(x), cuda::in_span<scalar_t>(c), cuda::in_span<scalar_t>(t),
          cuda::in_span<double>(c_norms), row0, m, k, d, cuda::out_span<int64_t>(labels),
          cuda::out_span<scalar_t>(sq_dists));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {labels, sq_dists};
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CUDA, m) {
  m.impl("assign", &assign_cuda);
}

} // namespace clue_ext
