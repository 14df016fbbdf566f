// Distinct nearest point of each centroid. One GEMM pass keeps each
// centroid's few nearest points; collisions are then resolved centroid by
// centroid, and only a centroid whose short list is used up rescans x.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "../op_checks.h"
#include "dense_math.h"

namespace clue_ext {
namespace {

// How many nearest points each centroid remembers from the GEMM pass.
constexpr int64_t kShortList = 8;

using Candidate = std::pair<double, int64_t>;  // (squared distance, index)

// Keeps the `cap` smallest candidates, sorted.
inline void offer(std::vector<Candidate>& list, int64_t cap, const Candidate& c) {
  if (static_cast<int64_t>(list.size()) == cap && !(c < list.back())) return;
  auto pos = std::upper_bound(list.begin(), list.end(), c);
  list.insert(pos, c);
  if (static_cast<int64_t>(list.size()) > cap) list.pop_back();
}

template <typename scalar_t>
std::vector<std::vector<Candidate>> short_lists(const at::Tensor& x, const at::Tensor& c,
                                                const bool* excluded, int64_t cap) {
  const int64_t n = x.size(0), d = x.size(1), k = c.size(0);
  const at::Tensor c_norms_d = cpu::row_sq_norms(c);
  const double* c_norms = c_norms_d.data_ptr<double>();
  const scalar_t* px = x.data_ptr<scalar_t>();
  const int64_t n_chunks = (n + cpu::kRowChunk - 1) / cpu::kRowChunk;

  // One set of short lists per worker; chunks are contiguous row ranges, so
  // merging them by (distance, index) gives the same lists for any split.
  const int64_t n_workers = at::get_num_threads();
  std::vector<std::vector<std::vector<Candidate>>> per_worker(
      n_workers, std::vector<std::vector<Candidate>>(k));
  at::parallel_for(0, n_chunks, 1, [&](int64_t lo, int64_t hi) {
    auto& lists = per_worker[at::get_thread_num()];
    at::Tensor tile = at::empty({cpu::kRowChunk, k}, x.options());
    for (int64_t chunk = lo; chunk < hi; ++chunk) {
      const int64_t r0 = chunk * cpu::kRowChunk;
      const int64_t m = std::min(cpu::kRowChunk, n - r0);
      at::Tensor t = tile.narrow(0, 0, m);
      cpu::dot_tile(x.narrow(0, r0, m), c, t);
      const scalar_t* pt = t.data_ptr<scalar_t>();
      for (int64_t r = 0; r < m; ++r) {
        const int64_t i = r0 + r;
        if (excluded != nullptr && excluded[i]) continue;
        const double x_norm = cpu::sq_norm(px + i * d, d);
        for (int64_t j = 0; j < k; ++j) {
          const double v = std::max(0.0, x_norm + c_norms[j] - 2.0 * static_cast<double>(pt[r * k + j]));
          offer(lists[j], cap, {v, i});
        }
      }
    }
  });
  std::vector<std::vector<Candidate>> merged(k);
  for (int64_t j = 0; j < k; ++j) {
    for (auto& lists : per_worker)
      for (const Candidate& cand : lists[j]) offer(merged[j], cap, cand);
  }
  return merged;
}

// The nearest point to centroid j that is not taken, by a full scan.
template <typename scalar_t>
int64_t rescan(const at::Tensor& x, const at::Tensor& x_norms, const at::Tensor& c, int64_t j,
               const std::vector<char>& taken) {
  const at::Tensor centroid = c[j];
  const double c_norm = cpu::sq_norm(centroid.data_ptr<scalar_t>(), c.size(1));
  const at::Tensor dots = at::mv(x, centroid);
  const scalar_t* pd = dots.data_ptr<scalar_t>();
  const double* pn = x_norms.data_ptr<double>();
  Candidate best{std::numeric_limits<double>::infinity(), -1};
  for (int64_t i = 0; i < x.size(0); ++i) {
    if (taken[i]) continue;
    const Candidate cand{std::max(0.0, pn[i] + c_norm - 2.0 * static_cast<double>(pd[i])), i};
    if (cand < best) best = cand;
  }
  TORCH_INTERNAL_ASSERT(best.second >= 0, "nearest_points ran out of points");
  return best.second;
}

at::Tensor nearest_points_cpu(const at::Tensor& x_in, const at::Tensor& c_in,
                              const std::optional<at::Tensor>& exclude_in) {
  check_nearest_args(x_in, c_in, exclude_in);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor c = c_in.contiguous();
  const int64_t n = x.size(0), k = c.size(0);
  at::Tensor exclude;
  int64_t n_excluded = 0;
  if (exclude_in.has_value()) {
    exclude = exclude_in->contiguous();
    n_excluded = exclude.sum().item<int64_t>();
  }
  TORCH_CHECK_VALUE(k <= n - n_excluded, "centroids has ", k, " rows but only ", n - n_excluded,
                    " points of x are not excluded; each centroid needs its own point");
  const bool* excluded = exclude.defined() ? exclude.data_ptr<bool>() : nullptr;

  at::Tensor out = at::empty({k}, x.options().dtype(at::kLong));
  int64_t* po = out.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "nearest_points_cpu", [&] {
    const auto lists = short_lists<scalar_t>(x, c, excluded, std::min(kShortList, n - n_excluded));
    std::vector<char> taken(n, 0);
    if (excluded != nullptr)
      for (int64_t i = 0; i < n; ++i) taken[i] = excluded[i];
    at::Tensor x_norms;  // computed on the first rescan only
    for (int64_t j = 0; j < k; ++j) {
      int64_t pick = -1;
      for (const Candidate& cand : lists[j]) {
        if (!taken[cand.second]) {
          pick = cand.second;
          break;
        }
      }
      if (pick < 0) {
        if (!x_norms.defined()) x_norms = cpu::row_sq_norms(x);
        pick = rescan<scalar_t>(x, x_norms, c, j, taken);
      }
      taken[pick] = 1;
      po[j] = pick;
    }
  });
  return out;
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CPU, m) {
  m.impl("nearest_points", &nearest_points_cpu);
}

} // namespace clue_ext
