// Nearest centroid of every point: GEMM tile + fused argmin, chunk by chunk.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>

#include "../op_checks.h"
#include "dense_math.h"

namespace clue_ext {
namespace {

template <typename scalar_t>
void assign_kernel(const at::Tensor& x, const at::Tensor& c, int64_t* labels, scalar_t* sq_dists) {
  const int64_t n = x.size(0), d = x.size(1), k = c.size(0);
  const at::Tensor c_norms_d = cpu::row_sq_norms(c);
  const double* c_norms = c_norms_d.data_ptr<double>();
  const scalar_t* px = x.data_ptr<scalar_t>();
  const scalar_t* pc = c.data_ptr<scalar_t>();
  const int64_t n_chunks = (n + cpu::kRowChunk - 1) / cpu::kRowChunk;

  at::parallel_for(0, n_chunks, 1, [&](int64_t lo, int64_t hi) {
    at::Tensor tile = at::empty({cpu::kRowChunk, k}, x.options());
    for (int64_t chunk = lo; chunk < hi; ++chunk) {
      const int64_t r0 = chunk * cpu::kRowChunk;
      const int64_t m = std::min(cpu::kRowChunk, n - r0);
      at::Tensor t = tile.narrow(0, 0, m);
      cpu::dot_tile(x.narrow(0, r0, m), c, t);
      const scalar_t* pt = t.data_ptr<scalar_t>();
      for (int64_t r = 0; r < m; ++r) {
        const int64_t i = r0 + r;
        const double x_norm = cpu::sq_norm(px + i * d, d);
        const scalar_t* row = pt + r * k;
        double best = std::numeric_limits<double>::infinity();
        int64_t best_j = 0;
        for (int64_t j = 0; j < k; ++j) {
          // Clamped at 0 so that every centroid within rounding of the point
          // ties, and the lowest index among them wins.
          const double v = std::max(0.0, x_norm + c_norms[j] - 2.0 * static_cast<double>(row[j]));
          if (v < best) {
            best = v;
            best_j = j;
          }
        }
        labels[i] = best_j;
        sq_dists[i] = static_cast<scalar_t>(cpu::sq_distance(px + i * d, pc + best_j * d, d));
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> assign_cpu(const at::Tensor& x_in, const at::Tensor& c_in) {
  check_assign_args(x_in, c_in);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor c = c_in.contiguous();
  at::Tensor labels = at::empty({x.size(0)}, x.options().dtype(at::kLong));
  at::Tensor sq_dists = at::empty({x.size(0)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "assign_cpu", [&] {
    assign_kernel<scalar_t>(x, c, labels.data_ptr<int64_t>(), sq_dists.data_ptr<scalar_t>());
  });
  return {labels, sq_dists};
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CPU, m) {
  m.impl("assign", &assign_cpu);
}

} // namespace clue_ext
