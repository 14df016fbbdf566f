#pragma once

// Small building blocks shared by the CPU kernels: exact row arithmetic in
// double, and dot-product tiles through ATen's BLAS.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace clue_ext {
namespace cpu {

// Rows per GEMM tile. A 256 x K float tile stays in L2 for the K of
// interest, so the argmin that follows each GEMM reads it from cache.
constexpr int64_t kRowChunk = 256;

template <typename scalar_t>
inline double sq_norm(const scalar_t* a, int64_t d) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < d; ++i) {
    const double v = static_cast<double>(a[i]);
    s += v * v;
  }
  return s;
}

template <typename scalar_t>
inline double sq_distance(const scalar_t* a, const scalar_t* b, int64_t d) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < d; ++i) {
    const double v = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += v * v;
  }
  return s;
}

// Squared norm of every row of a contiguous (N, D) tensor, in double.
inline at::Tensor row_sq_norms(const at::Tensor& x) {
  const int64_t n = x.size(0), d = x.size(1);
  at::Tensor out = at::empty({n}, x.options().dtype(at::kDouble));
  double* o = out.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "row_sq_norms", [&] {
    const scalar_t* px = x.data_ptr<scalar_t>();
    at::parallel_for(0, n, 1024, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) o[i] = sq_norm(px + i * d, d);
    });
  });
  return out;
}

// Runs body(next) on every thread, where next() hands out the blocks
// 0..n_blocks-1 one at a time (-1 when none is left). For loops whose blocks
// cost very different amounts (after pruning), where a static split would
// leave a thread idle. Results must be kept per block, so that they do not
// depend on which thread took which block.
template <typename Body>
void for_blocks_dynamically(int64_t n_blocks, const Body& body) {
  std::atomic<int64_t> counter{0};
  const auto next = [&]() -> int64_t {
    const int64_t b = counter.fetch_add(1, std::memory_order_relaxed);
    return b < n_blocks ? b : -1;
  };
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n_blocks));
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) { body(next); });
}

// out (m, n) = rows (m, d) @ cols (n, d)^T, written into `out`'s storage.
// Called from inside at::parallel_for, where ATen runs the GEMM on the
// calling thread.
inline void dot_tile(const at::Tensor& rows, const at::Tensor& cols, at::Tensor& out) {
  at::mm_out(out, rows, cols.t());
}

} // namespace cpu
} // namespace clue_ext
