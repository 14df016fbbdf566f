// Weighted greedy K-Means++ seeding on the device. Each centre is one round
// of small kernels enqueued on the current stream, with no host
// synchronisation anywhere in the loop:
//
//   draw    exclusive prefix sums of the per-block masses w * D^2, then one
//           binary search and a scan of one block of rows per candidate (or,
//           with no mass left, uniform draws among the points not chosen);
//   dots    x . x[cands]^T through ATen (cuBLAS), times f . f[cands]^T when a
//           factor is given (the BADGE outer-product points);
//   gain    every point's distance to every candidate and, per block of
//           rows, the weighted potential each candidate would remove;
//   pick    the candidate removing most (the earlier one on ties);
//   update  D^2 = min(D^2, d^2(x, centre)), 0 at the centre, and the
//           per-block masses for the next draw.
//
// The first centre runs the same round with one candidate and D^2 = 1, so
// it is drawn from cumsum(w). There is no pruning: every point is measured,
// which gives the picks of the CPU kernel (it prunes only points that cannot
// move). All sums are in double and in a fixed order.

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../op_checks.h"
#include "cuda_utils.cuh"

namespace clue_ext {
namespace {

using cuda::Span;

constexpr int kRowBlock = 256;  // rows per block of masses and gains, as the CPU's draw
constexpr int kDrawThreads = 1024;
constexpr int kPickThreads = 256;

template <typename scalar_t>
__device__ __forceinline__ double mass_of(Span<const scalar_t> w, Span<const double> d2, int64_t i) {
  return static_cast<double>(w[i]) * d2[i];
}

// The first point whose running mass exceeds `target` (a point of positive
// mass, so never a chosen one); the last point with mass if rounding put
// the target past the end.
template <typename scalar_t>
__device__ int64_t draw_by_mass(double target, Span<const double> block_start, Span<const double> block_mass,
                                int64_t blocks, Span<const scalar_t> w, Span<const double> d2, int64_t n) {
  int64_t lo = 0, hi = blocks;  // lo: the first block that starts above target
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (block_start[mid] > target) hi = mid;
    else lo = mid + 1;
  }
  for (int64_t b = lo > 0 ? lo - 1 : 0; b < blocks; ++b) {
    double run = block_start[b];
    const int64_t end = std::min(n, (b + 1) * kRowBlock);
    for (int64_t i = b * kRowBlock; i < end; ++i) {
      const double m = mass_of(w, d2, i);
      run += m;
      if (run > target && m > 0.0) return i;
    }
  }
  for (int64_t b = blocks - 1; b >= 0; --b) {
    if (!(block_mass[b] > 0.0)) continue;
    for (int64_t i = std::min(n, (b + 1) * kRowBlock) - 1; i >= b * kRowBlock; --i)
      if (mass_of(w, d2, i) > 0.0) return i;
  }
  return 0;  // unreachable: the caller saw a positive total mass
}

// No mass left. Candidate t is the r-th point, in index order, of the pool
// of unchosen points of positive weight (all unchosen points if none has
// positive weight), r = floor(u[t] * |pool|). Every thread of the block calls
// this; each counts a contiguous range of points.
template <typename scalar_t>
__device__ void draw_unchosen(Span<const double> u, int64_t t_count, Span<const scalar_t> w,
                              Span<const uint8_t> chosen, int64_t n, Span<int64_t> cands, int64_t* scratch) {
  const int64_t per = cuda::ceil_div(n, kDrawThreads);
  const int64_t lo = std::min(n, threadIdx.x * per), hi = std::min(n, lo + per);
  int64_t free = 0, positive = 0;
  for (int64_t i = lo; i < hi; ++i) {
    if (chosen[i]) continue;
    ++free;
    positive += w[i] > 0;
  }
  int64_t free_total = 0, positive_total = 0;
  const int64_t free_before = cuda::block_exclusive_scan<kDrawThreads>(free, scratch, free_total);
  const int64_t positive_before = cuda::block_exclusive_scan<kDrawThreads>(positive, scratch, positive_total);
  const bool only_positive = positive_total > 0;
  const int64_t pool = only_positive ? positive_total : free_total;
  const int64_t before = only_positive ? positive_before : free_before;
  const int64_t own = only_positive ? positive : free;
  CUDA_KERNEL_ASSERT(pool > 0);  // k <= n leaves a point for every centre
  for (int64_t t = 0; t < t_count; ++t) {
    const int64_t r = std::min(pool - 1, static_cast<int64_t>(u[t] * static_cast<double>(pool)));
    if (r < before || r >= before + own) continue;  // another thread's range
    int64_t skip = r - before;
    for (int64_t i = lo; i < hi; ++i) {
      if (chosen[i] || (only_positive && !(w[i] > 0))) continue;
      if (skip-- == 0) {
        cands[t] = i;
        break;
      }
    }
  }
}

// One block: block_start = exclusive prefix sums of block_mass, then the
// t_count candidates drawn with uniforms u.
template <typename scalar_t>
__global__ void draw_kernel(Span<const double> block_mass, int64_t blocks, Span<const scalar_t> w,
                            Span<const double> d2, Span<const uint8_t> chosen, int64_t n, Span<const double> u,
                            int64_t t_count, Span<double> block_start, Span<int64_t> cands) {
  __shared__ double scan_d[kDrawThreads / cuda::kWarp + 1];
  __shared__ int64_t scan_i[kDrawThreads / cuda::kWarp + 1];
  const int64_t per = cuda::ceil_div(blocks, kDrawThreads);
  const int64_t lo = std::min(blocks, threadIdx.x * per), hi = std::min(blocks, lo + per);
  double own = 0.0;
  for (int64_t b = lo; b < hi; ++b) own += block_mass[b];
  double total = 0.0;
  double run = cuda::block_exclusive_scan<kDrawThreads>(own, scan_d, total);
  for (int64_t b = lo; b < hi; ++b) {
    block_start[b] = run;
    run += block_mass[b];
  }
  __syncthreads();  // block_start is complete
  if (total > 0.0) {
    for (int64_t t = threadIdx.x; t < t_count; t += kDrawThreads)
      cands[t] = draw_by_mass<scalar_t>(u[t] * total, block_start, block_mass,
                              blocks, w, d2, n);
  } else {
    draw_unchosen(u, t_count, w, chosen, n, cands, scan_i);
  }
}

// Block b, row i = b * kRowBlock + thread: cand_d2[i, t] = d^2(x_i, cand_t)
// from the expanded form (0 for the candidate itself), and block_gain[b, t] =
// sum over the block of w_i * max(0, D^2_i - cand_d2[i, t]).
template <typename scalar_t>
__global__ void gain_kernel(Span<const scalar_t> dots, Span<const scalar_t> f_dots, Span<const double> norms,
                            Span<const double> d2, Span<const scalar_t> w, Span<const int64_t> cands,
                            int64_t t_count, int64_t n, Span<double> cand_d2, Span<double> block_gain) {
  __shared__ double scratch[kRowBlock / cuda::kWarp];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kRowBlock + threadIdx.x;
  const bool valid = i < n;
  const double norm_i = valid ? norms[i] : 0.0;
  const double d2_i = valid ? d2[i] : 0.0;
  const double w_i = valid ? static_cast<double>(w[i]) : 0.0;
  for (int64_t t = 0; t < t_count; ++t) {
    double gain = 0.0;
    if (valid) {
      const int64_t c = cands[t];
      double dot = static_cast<double>(dots[i * t_count + t]);
      if (f_dots.present()) dot *= static_cast<double>(f_dots[i * t_count + t]);
      const double v = i == c ? 0.0 : fmax(0.0, norm_i + norms[c] - 2.0 * dot);
      cand_d2[i * t_count + t] = v;
      const double drop = d2_i - v;
      if (drop > 0.0) gain = w_i * drop;
    }
    gain = cuda::block_sum<kRowBlock>(gain, scratch);
    if (threadIdx.x == 0) block_gain[blockIdx.x * t_count + t] = gain;
  }
}

// One block: sums each candidate's gain over the row blocks and makes the
// best candidate (the earlier on ties) centre j. choice = (candidate, point).
__global__ void pick_kernel(Span<const double> block_gain, int64_t blocks, int64_t t_count,
                            Span<const int64_t> cands, int64_t j, Span<int64_t> choice, Span<int64_t> centres,
                            Span<uint8_t> chosen) {
  __shared__ double scratch[kPickThreads / cuda::kWarp];
  double best_gain = 0.0;  // meaningful in thread 0
  int64_t best = 0;
  for (int64_t t = 0; t < t_count; ++t) {
    double gain = 0.0;
    for (int64_t b = threadIdx.x; b < blocks; b += kPickThreads) gain += block_gain[b * t_count + t];
    gain = cuda::block_sum<kPickThreads>(gain, scratch);
    if (t == 0 || gain > best_gain) {
      best_gain = gain;
      best = t;
    }
  }
  if (threadIdx.x == 0) {
    const int64_t c = cands[best];
    choice[0] = best;
    choice[1] = c;
    centres[j] = c;
    chosen[c] = 1;
  }
}

// D^2 after the chosen candidate joins the centres: min(D^2, its distance),
// or its distance alone for the first centre, and 0 at the centre itself;
// then block_mass[b] = sum over the block of w * D^2. Without cand_d2 only
// the masses are computed.
template <typename scalar_t>
__global__ void update_kernel(Span<double> d2, Span<const scalar_t> w, Span<const double> cand_d2, int64_t t_count,
                              Span<const int64_t> choice, bool first, int64_t n, Span<double> block_mass) {
  __shared__ double scratch[kRowBlock / cuda::kWarp];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kRowBlock + threadIdx.x;
  double mass = 0.0;
  if (i < n) {
    double v = d2[i];
    if (cand_d2.present()) {
      const double to_centre = cand_d2[i * t_count + choice[0]];
      v = i == choice[1] ? 0.0 : (first ? to_centre : fmin(v, to_centre));
      d2[i] = v;
    }
    mass = static_cast<double>(w[i]) * v;
  }
  mass = cuda::block_sum<kRowBlock>(mass, scratch);
  if (threadIdx.x == 0) block_mass[blockIdx.x] = mass;
}

template <typename scalar_t>
void seed(const at::Tensor& x, const at::Tensor& f, const at::Tensor& w, const at::Tensor& u, int64_t k,
          int64_t trials, at::Tensor& centres) {
  const int64_t n = x.size(0);
  const int64_t blocks = cuda::ceil_div(n, kRowBlock);
  const unsigned grid = cuda::blocks_for(n, kRowBlock);
  const auto dbl = x.options().dtype(at::kDouble);
  const auto lng = x.options().dtype(at::kLong);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  at::Tensor norms = cuda::row_sq_norms(x);
  if (f.defined()) norms.mul_(cuda::row_sq_norms(f));
  at::Tensor d2 = at::ones({n}, dbl);
  at::Tensor chosen = at::zeros({n}, x.options().dtype(at::kByte));
  at::Tensor block_mass = at::empty({blocks}, dbl);
  at::Tensor block_start = at::empty({blocks}, dbl);
  at::Tensor block_gain_buf = at::empty({blocks * trials}, dbl);
  at::Tensor cand_d2_buf = at::empty({n * trials}, dbl);
  at::Tensor cands_buf = at::empty({trials}, lng);
  at::Tensor choice = at::empty({2}, lng);

  const auto w_s = cuda::in_span<scalar_t>(w);
  update_kernel<scalar_t><<<grid, kRowBlock, 0, stream>>>(cuda::out_span<double>(d2), w_s, Span<const double>{nullptr, 0},
                                                            1, cuda::in_span<int64_t>(choice), false, n,
                                                            cuda::out_span<double>(block_mass));
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  for (int64_t j = 0; j < k; ++j) {
    const int64_t t_count = j == 0 ? 1 : trials;
    const int64_t u_offset = j == 0 ? 0 : 1 + (j - 1) * trials;
    const at::Tensor cands = cands_buf.narrow(0, 0, t_count);
    const at::Tensor cand_d2 = cand_d2_buf.narrow(0, 0, n * t_count);
    const at::Tensor block_gain = block_gain_buf.narrow(0, 0, blocks * t_count);

    draw_kernel<scalar_t><<<1, kDrawThreads, 0, stream>>>(
        cuda::in_span<double>(block_mass), blocks, w_s, cuda::in_span<double>(d2), cuda::in_span<uint8_t>(chosen), n,
        cuda::in_span<double>(u.narrow(0, u_offset, t_count)), t_count, cuda::out_span<double>(block_start),
        cuda::out_span<int64_t>(cands));
    C10_CUDA_KERNEL_LAUNCH_CHECK();

    const at::Tensor dots = at::mm(x, x.index_select(0, cands).t()).contiguous();
    const at::Tensor f_dots = f.defined() ? at::mm(f, f.index_select(0, cands).t()).contiguous() : at::Tensor();

    gain_kernel<scalar_t><<<grid, kRowBlock, 0, stream>>>(
        cuda::in_span<scalar_t>(dots), cuda::in_span<scalar_t>(f_dots), cuda::in_span<double>(norms),
        cuda::in_span<double>(d2), w_s, cuda::in_span<int64_t>(cands), t_count, n, cuda::out_span<double>(cand_d2),
        cuda::out_span<double>(block_gain));
    C10_CUDA_KERNEL_LAUNCH_CHECK();

    pick_kernel<<<1, kPickThreads, 0, stream>>>(cuda::in_span<double>(block_gain), blocks, t_count,
                                                cuda::in_span<int64_t>(cands), j, cuda::out_span<int64_t>(choice),
                                                cuda::out_span<int64_t>(centres), cuda::out_span<uint8_t>(chosen));
    C10_CUDA_KERNEL_LAUNCH_CHECK();

    update_kernel<scalar_t><<<grid, kRowBlock, 0, stream>>>(
        cuda::out_span<double>(d2), w_s, cuda::in_span<double>(cand_d2), t_count, cuda::in_span<int64_t>(choice),
        j == 0, n, cuda::out_span<double>(block_mass));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

at::Tensor kmeanspp_seed_cuda(const at::Tensor& x_in, const at::Tensor& w_in, int64_t k, const at::Tensor& u_in,
                              int64_t n_local_trials, const std::optional<at::Tensor>& factor_in) {
  check_seed_args(x_in, w_in, k, u_in, n_local_trials, factor_in);
  const at::cuda::CUDAGuard guard(x_in.device());
  const at::NoTF32Guard full_float32;  // the distance GEMMs ignore torch's TF32 setting
  const at::Tensor x = x_in.contiguous();
  const at::Tensor w = w_in.contiguous();
  const at::Tensor u = u_in.contiguous();
  const at::Tensor f = factor_in.has_value() ? factor_in->contiguous() : at::Tensor();
  at::Tensor centres = at::empty({k}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeanspp_seed_cuda", [&] {
    seed<scalar_t>(x, f, w, u, k, n_local_trials, centres);
  });
  return centres;
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CUDA, m) {
  m.impl("kmeanspp_seed", &kmeanspp_seed_cuda);
}

} // namespace clue_ext
