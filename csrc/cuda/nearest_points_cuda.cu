// Distinct nearest point of each centroid, as on the CPU: one pass of x.c^T
// tiles keeps each centroid's few nearest points (by (distance, index)), a
// one-warp kernel serves the centroids in order from these lists, and only a
// centroid whose list is used up rescans x.
//
// The kept lists are the kShortList smallest pairs of a total order, so they
// do not depend on how rows are split among threads: no atomics are needed.

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../op_checks.h"
#include "cuda_utils.cuh"

namespace clue_ext {
namespace {

using cuda::Span;

constexpr int kShortList = 8;        // points remembered per centroid (as the CPU)
constexpr int kColumns = 32;         // centroids per block of the list kernel
constexpr int kRowLanes = 8;         // threads sharing one centroid's rows
constexpr int64_t kSliceRows = 256;  // tile rows per block of the list kernel
constexpr int64_t kMaxTileRows = int64_t{1} << 15;
constexpr int kMergeThreads = 128;
constexpr int kRescanBlocks = 1024;  // one warp each

// The kShortList smallest (distance, index) pairs offered, ascending.
// Indexed with compile-time positions only, so it lives in registers.
struct ShortList {
  double d[kShortList];
  int64_t i[kShortList];

  __device__ __forceinline__ void clear() {
#pragma unroll
    for (int l = 0; l < kShortList; ++l) {
      d[l] = INFINITY;
      i[l] = cuda::kNoIndex;
    }
  }

  // The new pair replaces the last entry and bubbles up to its place:
  // no early exit, so the arrays stay in registers.
  __device__ __forceinline__ void offer(double v, int64_t idx) {
    if (!cuda::before(v, idx, d[kShortList - 1], i[kShortList - 1])) return;
    d[kShortList - 1] = v;
    i[kShortList - 1] = idx;
#pragma unroll
    for (int l = kShortList - 1; l > 0; --l) {
      if (cuda::before(d[l], i[l], d[l - 1], i[l - 1])) {
        const double td = d[l];
        const int64_t ti = i[l];
        d[l] = d[l - 1];
        i[l] = i[l - 1];
        d[l - 1] = td;
        i[l - 1] = ti;
      }
    }
  }

  __device__ __forceinline__ void load(Span<const double> ds, Span<const int64_t> is, int64_t at) {
#pragma unroll
    for (int l = 0; l < kShortList; ++l) {
      d[l] = ds[at + l];
      i[l] = is[at + l];
    }
  }

  __device__ __forceinline__ void store(Span<double> ds, Span<int64_t> is, int64_t at) const {
#pragma unroll
    for (int l = 0; l < kShortList; ++l) {
      ds[at + l] = d[l];
      is[at + l] = i[l];
    }
  }
};

// Block (column group, row slice) of a (rows, k) tile whose row r is point
// row0 + r: thread (tx, ty) keeps the short list of centroid j over the rows
// ty, ty + kRowLanes, ... of the slice; the kRowLanes lists are then merged
// and written to part[(slice, j)].
template <typename scalar_t>
__global__ void shortlist_tile_kernel(Span<const scalar_t> tile, int64_t rows, int64_t k, int64_t row0,
                                      Span<const double> x_norms, Span<const double> c_norms,
                                      Span<const uint8_t> excluded, Span<double> part_d,
                                      Span<int64_t> part_i) {
  __shared__ double shared_d[kRowLanes][kShortList][kColumns];
  __shared__ int64_t shared_i[kRowLanes][kShortList][kColumns];
  const int tx = cuda::thread_x(), ty = cuda::thread_y();
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColumns + tx;
  const int64_t r_begin = static_cast<int64_t>(blockIdx.y) * kSliceRows;
  const int64_t r_end = std::min(rows, r_begin + kSliceRows);

  ShortList list;
  list.clear();
  if (j < k) {
    const double c_norm = c_norms[j];
    for (int64_t r = r_begin + ty; r < r_end; r += kRowLanes) {
      const int64_t i = row0 + r;
      if (excluded.present() && excluded[i]) continue;
      const double v = fmax(0.0, x_norms[i] + c_norm - 2.0 * static_cast<double>(tile[r * k + j]));
      list.offer(v, i);
    }
  }
#pragma unroll
  for (int l = 0; l < kShortList; ++l) {
    shared_d[ty][l][tx] = list.d[l];
    shared_i[ty][l][tx] = list.i[l];
  }
  __syncthreads();
  if (ty != 0 || j >= k) return;
  for (int lane = 1; lane < kRowLanes; ++lane) {
#pragma unroll
    for (int l = 0; l < kShortList; ++l) list.offer(shared_d[lane][l][tx], shared_i[lane][l][tx]);
  }
  list.store(part_d, part_i, (static_cast<int64_t>(blockIdx.y) * k + j) * kShortList);
}

// Folds the slices' lists of one tile into each centroid's running list.
__global__ void shortlist_merge_kernel(Span<const double> part_d, Span<const int64_t> part_i, int64_t slices,
                                       int64_t k, Span<double> list_d, Span<int64_t> list_i) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kMergeThreads + threadIdx.x;
  if (j >= k) return;
  ShortList list;
  list.load(list_d, list_i, j * kShortList);
  for (int64_t s = 0; s < slices; ++s) {
    const int64_t at = (s * k + j) * kShortList;
#pragma unroll
    for (int l = 0; l < kShortList; ++l) list.offer(part_d[at + l], part_i[at + l]);
  }
  list.store(list_d, list_i, j * kShortList);
}

// One warp serves centroids start, start + 1, ... in order: each takes the
// first point of its list (the first `cap` entries) that is not taken. At the
// first centroid whose list is used up it stops, and stop[0] says where (k
// when every centroid was served).
__global__ void resolve_kernel(Span<const int64_t> list_i, int cap, int64_t k, int64_t start,
                               Span<uint8_t> taken, Span<int64_t> picks, Span<int64_t> stop) {
  const int lane = cuda::thread_x();
  volatile uint8_t* taken_v = taken.ptr;  // other lanes' writes, seen after __syncwarp
  for (int64_t j = start; j < k; ++j) {
    int64_t i = cuda::kNoIndex;
    bool free = false;
    if (lane < cap) {
      i = list_i[j * kShortList + lane];
      if (i != cuda::kNoIndex) {
        taken.check(i);
        free = taken_v[i] == 0;
      }
    }
    const unsigned ballot = __ballot_sync(cuda::kFullMask, free);
    if (ballot == 0) {
      if (lane == 0) stop[0] = j;
      return;
    }
    if (lane == __ffs(static_cast<int>(ballot)) - 1) {
      picks[j] = i;
      taken_v[i] = 1;
    }
    __syncwarp();
  }
  if (lane == 0) stop[0] = k;
}

// Rescan, step 1: block b (one warp) finds the nearest free point among
// i = b*32 + lane (mod the grid) by (distance, index).
template <typename scalar_t>
__global__ void rescan_partial_kernel(Span<const scalar_t> dots, Span<const double> x_norms,
                                      Span<const double> c_norms, int64_t j, Span<const uint8_t> taken, int64_t n,
                                      Span<double> part_d, Span<int64_t> part_i) {
  const double c_norm = c_norms[j];
  double best = INFINITY;
  int64_t best_i = cuda::kNoIndex;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * cuda::kWarp;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * cuda::kWarp + threadIdx.x; i < n; i += stride) {
    if (taken[i]) continue;
    const double v = fmax(0.0, x_norms[i] + c_norm - 2.0 * static_cast<double>(dots[i]));
    if (cuda::before(v, i, best, best_i)) {
      best = v;
      best_i = i;
    }
  }
  cuda::warp_argmin(best, best_i);
  if (threadIdx.x == 0) {
    part_d[blockIdx.x] = best;
    part_i[blockIdx.x] = best_i;
  }
}

// Rescan, step 2: one warp reduces the partial minima and gives centroid j
// the winner.
__global__ void rescan_pick_kernel(Span<const double> part_d, Span<const int64_t> part_i, int64_t parts,
                                   int64_t j, Span<uint8_t> taken, Span<int64_t> picks) {
  double best = INFINITY;
  int64_t best_i = cuda::kNoIndex;
  for (int64_t p = threadIdx.x; p < parts; p += cuda::kWarp) {
    if (cuda::before(part_d[p], part_i[p], best, best_i)) {
      best = part_d[p];
      best_i = part_i[p];
    }
  }
  cuda::warp_argmin(best, best_i);
  if (threadIdx.x == 0) {
    CUDA_KERNEL_ASSERT(best_i != cuda::kNoIndex);  // guaranteed by the k <= free points check
    picks[j] = best_i;
    taken[best_i] = 1;
  }
}

// Each centroid's kShortList nearest non-excluded points, (k, kShortList)
// indices, ascending by (distance, index); kNoIndex pads short lists.
template <typename scalar_t>
at::Tensor short_lists(const at::Tensor& x, const at::Tensor& c, const at::Tensor& x_norms,
                       const at::Tensor& c_norms, const at::Tensor& excluded) {
  const int64_t n = x.size(0), k = c.size(0);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const int64_t chunk = cuda::tile_rows(n, k, x.element_size(), kMaxTileRows);
  const int64_t max_slices = cuda::ceil_div(chunk, kSliceRows);
  const auto dbl = x.options().dtype(at::kDouble);
  const auto lng = x.options().dtype(at::kLong);
  at::Tensor tile = at::empty({chunk, k}, x.options());
  at::Tensor part_d = at::empty({max_slices, k, kShortList}, dbl);
  at::Tensor part_i = at::empty({max_slices, k, kShortList}, lng);
  at::Tensor list_d = at::full({k, kShortList}, INFINITY, dbl);
  at::Tensor list_i = at::full({k, kShortList}, cuda::kNoIndex, lng);

  for (int64_t row0 = 0; row0 < n; row0 += chunk) {
    const int64_t m = std::min(chunk, n - row0);
    const int64_t slices = cuda::ceil_div(m, kSliceRows);
    at::Tensor t = tile.narrow(0, 0, m);
    at::mm_out(t, x.narrow(0, row0, m), c.t());
    const dim3 grid(cuda::blocks_for(k, kColumns), static_cast<unsigned>(slices));
    shortlist_tile_kernel<scalar_t><<<grid, dim3(kColumns, kRowLanes), 0, stream>>>(
        cuda::in_span<scalar_t>(t), m, k, row0, cuda::in_span<double>(x_norms), cuda::in_span<double>(c_norms),
        cuda::in_span<uint8_t>(excluded), cuda::out_span<double>(part_d), cuda::out_span<int64_t>(part_i));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    shortlist_merge_kernel<<<cuda::blocks_for(k, kMergeThreads), kMergeThreads, 0, stream>>>(
        cuda::in_span<double>(part_d), cuda::in_span<int64_t>(part_i), slices, k, cuda::out_span<double>(list_d),
        cuda::out_span<int64_t>(list_i));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return list_i;
}

// Gives centroid j the nearest point not taken, by a scan of every point.
template <typename scalar_t>
void rescan(const at::Tensor& x, const at::Tensor& x_norms, const at::Tensor& c, const at::Tensor& c_norms,
            int64_t j, at::Tensor& taken, at::Tensor& picks) {
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const at::Tensor dots = at::mv(x, c.select(0, j)).contiguous();
  at::Tensor part_d = at::empty({kRescanBlocks}, x.options().dtype(at::kDouble));
  at::Tensor part_i = at::empty({kRescanBlocks}, x.options().dtype(at::kLong));
  rescan_partial_kernel<scalar_t><<<kRescanBlocks, cuda::kWarp, 0, stream>>>(
      cuda::in_span<scalar_t>(dots), cuda::in_span<double>(x_norms), cuda::in_span<double>(c_norms), j,
      cuda::in_span<uint8_t>(taken), x.size(0), cuda::out_span<double>(part_d), cuda::out_span<int64_t>(part_i));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  rescan_pick_kernel<<<1, cuda::kWarp, 0, stream>>>(cuda::in_span<double>(part_d), cuda::in_span<int64_t>(part_i),
                                                    kRescanBlocks, j, cuda::out_span<uint8_t>(taken),
                                                    cuda::out_span<int64_t>(picks));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor nearest_points_cuda(const at::Tensor& x_in, const at::Tensor& c_in,
                               const std::optional<at::Tensor>& exclude_in) {
  check_nearest_args(x_in, c_in, exclude_in);
  const at::cuda::CUDAGuard guard(x_in.device());
  const at::NoTF32Guard full_float32;  // the distance GEMMs ignore torch's TF32 setting
  const at::Tensor x = x_in.contiguous();
  const at::Tensor c = c_in.contiguous();
  const int64_t n = x.size(0), k = c.size(0);
  at::Tensor excluded;  // uint8 (n,), or undefined
  int64_t n_excluded = 0;
  if (exclude_in.has_value()) {
    excluded = exclude_in->contiguous().to(at::kByte);
    n_excluded = exclude_in->sum().item<int64_t>();
  }
  TORCH_CHECK_VALUE(k <= n - n_excluded, "centroids has ", k, " rows but only ", n - n_excluded,
                    " points of x are not excluded; each centroid needs its own point");
  const int cap = static_cast<int>(std::min<int64_t>(kShortList, n - n_excluded));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  const at::Tensor x_norms = cuda::row_sq_norms(x);
  const at::Tensor c_norms = cuda::row_sq_norms(c);
  at::Tensor taken = excluded.defined() ? excluded.clone() : at::zeros({n}, x.options().dtype(at::kByte));
  at::Tensor picks = at::empty({k}, x.options().dtype(at::kLong));
  at::Tensor stop = at::empty({1}, x.options().dtype(at::kLong));

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "nearest_points_cuda", [&] {
    const at::Tensor list_i = short_lists<scalar_t>(x, c, x_norms, c_norms, excluded);
    int64_t start = 0;
    while (true) {
      resolve_kernel<<<1, cuda::kWarp, 0, stream>>>(cuda::in_span<int64_t>(list_i), cap, k, start,
                                                    cuda::out_span<uint8_t>(taken), cuda::out_span<int64_t>(picks),
                                                    cuda::out_span<int64_t>(stop));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      const int64_t j = stop.item<int64_t>();  // one sync, plus one per rescan
      if (j >= k) break;
      rescan<scalar_t>(x, x_norms, c, c_norms, j, taken, picks);
      start = j + 1;
    }
  });
  return picks;
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CUDA, m) {
  m.impl("nearest_points", &nearest_points_cuda);
}

} // namespace clue_ext
