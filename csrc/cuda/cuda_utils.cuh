#pragma once

// Shared by the CUDA kernels: launch helpers, bounds-checked views of tensor
// memory, warp/block reductions in a fixed order, and the (distance, index)
// order that breaks ties towards the lowest index.
//
// Every reduction here combines values in an order that depends only on the
// block size, never on thread timing, so results are reproducible run to run.

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace clue_ext {
namespace cuda {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// Index that sorts after every real point in the (distance, index) order.
constexpr int64_t kNoIndex = std::numeric_limits<int64_t>::max();

// --- thread coordinates --------------------------------------------------------

// threadIdx as int: below 1024, and signed so that index arithmetic with it
// never wraps around.
__device__ __forceinline__ int thread_x() { return static_cast<int>(threadIdx.x); }
__device__ __forceinline__ int thread_y() { return static_cast<int>(threadIdx.y); }
__device__ __forceinline__ int lane_id() { return thread_x() % kWarp; }
__device__ __forceinline__ int warp_id() { return thread_x() / kWarp; }

// --- host side ---------------------------------------------------------------

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Number of blocks covering `n` items, `per_block` items per block.
inline unsigned blocks_for(int64_t n, int64_t per_block) {
  const int64_t blocks = ceil_div(n, per_block);
  TORCH_INTERNAL_ASSERT(blocks >= 1 && blocks <= std::numeric_limits<int32_t>::max(),
                        "grid of ", blocks, " blocks is out of range");
  return static_cast<unsigned>(blocks);
}

// Rows of an (rows, k) GEMM tile that fit in a fixed memory budget, so that
// ops that scan all (point, centroid) pairs use O(rows * k) memory, not O(n * k).
inline int64_t tile_rows(int64_t n, int64_t k, int64_t elem_size, int64_t max_rows) {
  constexpr int64_t kTileBytes = int64_t{64} << 20;
  const int64_t fit = kTileBytes / (std::max<int64_t>(k, 1) * elem_size);
  return std::max<int64_t>(1, std::min({fit, n, max_rows}));
}

// --- bounds-checked views ----------------------------------------------------

// A pointer with its length. Indexing is checked on the device when the build
// defines CLUE_EXT_DEBUG_BOUNDS (DEBUG=1), and free otherwise. A view of an
// absent optional tensor has ptr == nullptr.
template <typename T>
struct Span {
  T* ptr;
  int64_t size;

  __device__ __forceinline__ T& operator[](int64_t i) const {
#ifdef CLUE_EXT_DEBUG_BOUNDS
    CUDA_KERNEL_ASSERT(i >= 0 && i < size);
#endif
    return ptr[i];
  }
  // The bounds check alone, for accesses made through another pointer type.
  __device__ __forceinline__ void check(int64_t i) const {
#ifdef CLUE_EXT_DEBUG_BOUNDS
    CUDA_KERNEL_ASSERT(i >= 0 && i < size);
#endif
  }
  __device__ __forceinline__ bool present() const { return ptr != nullptr; }

  // A writable view is also a read-only one.
  template <typename U = T, typename = std::enable_if_t<!std::is_const_v<U>>>
  __host__ __device__ operator Span<const U>() const {
    return {ptr, size};
  }
};

template <typename T>
Span<const T> in_span(const at::Tensor& t) {
  if (!t.defined()) return {nullptr, 0};
  TORCH_INTERNAL_ASSERT(t.is_contiguous() && t.is_cuda());
  return {t.const_data_ptr<T>(), t.numel()};
}

template <typename T>
Span<T> out_span(const at::Tensor& t) {
  TORCH_INTERNAL_ASSERT(t.defined() && t.is_contiguous() && t.is_cuda());
  return {t.mutable_data_ptr<T>(), t.numel()};
}

// --- (distance, index) order ---------------------------------------------------

__device__ __forceinline__ bool before(double da, int64_t ia, double db, int64_t ib) {
  return da < db || (da == db && ia < ib);
}

// --- warp and block reductions -------------------------------------------------

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// Lexicographic minimum of (d, i) over the warp; every lane gets the result.
__device__ __forceinline__ void warp_argmin(double& d, int64_t& i) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) {
    const double od = __shfl_xor_sync(kFullMask, d, offset);
    const long long oi = __shfl_xor_sync(kFullMask, static_cast<long long>(i), offset);
    if (before(od, oi, d, i)) {
      d = od;
      i = oi;
    }
  }
}

// Sum over a block of kThreads threads (a multiple of 32). Every thread must
// call it; the result is valid in thread 0. `scratch` holds kThreads / 32
// values and may be reused by the next call.
template <int kThreads>
__device__ __forceinline__ double block_sum(double v, double* scratch) {
  static_assert(kThreads % kWarp == 0 && kThreads <= 1024, "block size");
  constexpr int kWarps = kThreads / kWarp;
  const int lane = lane_id(), warp = warp_id();
  v = warp_sum(v);
  __syncthreads();  // the previous call is done reading scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = 0.0;
  if (warp == 0) total = warp_sum(lane < kWarps ? scratch[lane] : 0.0);
  return total;
}

// Prefix sums over a warp, in lane order: returns the inclusive sum and
// stores the exclusive one (0 in lane 0).
template <typename T>
__device__ __forceinline__ T warp_scan(T v, T& exclusive) {
  const int lane = lane_id();
#pragma unroll
  for (int offset = 1; offset < kWarp; offset <<= 1) {
    const T other = __shfl_up_sync(kFullMask, v, offset);
    if (lane >= offset) v += other;
  }
  exclusive = __shfl_up_sync(kFullMask, v, 1);
  if (lane == 0) exclusive = T(0);
  return v;
}

// Exclusive prefix sum over a block of kThreads threads (a multiple of 32),
// in thread order. Every thread must call it; each gets the sum of the values
// of the threads before it, and `total` the sum of all. `scratch` holds
// kThreads / 32 + 1 values.
template <int kThreads, typename T>
__device__ __forceinline__ T block_exclusive_scan(T v, T* scratch, T& total) {
  static_assert(kThreads % kWarp == 0 && kThreads <= 1024, "block size");
  constexpr int kWarps = kThreads / kWarp;
  const int lane = lane_id(), warp = warp_id();
  T exclusive;
  const T inclusive = warp_scan(v, exclusive);
  __syncthreads();  // the previous call is done reading scratch
  if (lane == kWarp - 1) scratch[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    T before_warp;
    const T run = warp_scan(lane < kWarps ? scratch[lane] : T(0), before_warp);
    if (lane < kWarps) scratch[lane] = before_warp;
    if (lane == kWarps - 1) scratch[kWarps] = run;
  }
  __syncthreads();
  total = scratch[kWarps];
  return scratch[warp] + exclusive;
}

// --- row norms -------------------------------------------------------------------

constexpr int kNormWarps = 8;

// out[i] = sum_d x[i, d]^2 in double, one warp per row.
template <typename scalar_t>
__global__ void row_sq_norms_kernel(Span<const scalar_t> x, int64_t n, int64_t d, Span<double> out) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kNormWarps + warp_id();
  const int lane = lane_id();
  if (row >= n) return;  // uniform over the warp
  double s = 0.0;
  for (int64_t col = lane; col < d; col += kWarp) {
    const double v = static_cast<double>(x[row * d + col]);
    s += v * v;
  }
  s = warp_sum(s);
  if (lane == 0) out[row] = s;
}

// Squared norm of each row of a contiguous (n, d) CUDA tensor, as float64 (n,),
// on the current stream.
inline at::Tensor row_sq_norms(const at::Tensor& x) {
  TORCH_INTERNAL_ASSERT(x.dim() == 2 && x.is_contiguous());
  const int64_t n = x.size(0), d = x.size(1);
  at::Tensor out = at::empty({n}, x.options().dtype(at::kDouble));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "row_sq_norms_cuda", [&] {
    row_sq_norms_kernel<scalar_t><<<blocks_for(n, kNormWarps), kNormWarps * kWarp, 0, stream>>>(
        in_span<scalar_t>(x), n, d, out_span<double>(out));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

} // namespace cuda
} // namespace clue_ext
