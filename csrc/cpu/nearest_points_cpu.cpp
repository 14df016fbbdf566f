// Distinct nearest point of each centroid. One GEMM pass keeps each
// centroid's few nearest points; collisions are then resolved centroid by
// centroid, and only a centroid whose short list is used up rescans x.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <limits>
#include <utility>
#include <vector>

#include "../op_checks.h"
#include "dense_math.h"
#include "small_dots.h"

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

// The same short lists from a labelling of the points (any labels: they
// only decide how much is pruned), without a pass over every centroid:
// a point x at distance r from its label's centroid a lies at least
// d(a, j) - r from centroid j, so it can be among j's `cap` nearest only if
// d(a, j) - r <= R_j, where R_j bounds j's cap-th nearest distance from above
// (by d(a, j) + r over the nearest members of every cluster a). The
// candidates are ranked with the same expanded distances as short_lists.
// Returns no lists when the candidates are too many for this to pay (more
// than a 1 / scatter_cost share of N x k: a scattered distance costs several
// GEMM ones), which happens where clusters overlap; scatter_cost 0: never.

template <typename scalar_t>
std::optional<std::vector<std::vector<Candidate>>> short_lists_from_labels(const at::Tensor& x, const at::Tensor& c,
                                                            const int64_t* labels, const bool* excluded,
                                                            int64_t cap, int64_t scatter_cost) {
  const int64_t n = x.size(0), d = x.size(1), k = c.size(0);
  const scalar_t* px = x.data_ptr<scalar_t>();
  const scalar_t* pc = c.data_ptr<scalar_t>();
  const at::Tensor c_norms_d = cpu::row_sq_norms(c);
  const double* c_norms = c_norms_d.data_ptr<double>();
  // Exact distance of every eligible point to its label's centroid.
  std::vector<double> own(n, -1.0);
  at::parallel_for(0, n, 1024, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      if (excluded == nullptr || !excluded[i]) own[i] = std::sqrt(cpu::sq_distance(px + i * d, pc + labels[i] * d, d));
  });
  // Centroid-to-centroid distances, rounded down (far) and up (near).
  const at::Tensor cd = c.to(at::kDouble);
  const at::Tensor cn = cd.pow(2).sum(1);
  const at::Tensor cc2 = (cn.unsqueeze(1) + cn.unsqueeze(0) - 2 * at::mm(cd, cd.t())).contiguous();
  const at::Tensor margin = (1e-12 * (cn.unsqueeze(1) + cn.unsqueeze(0))).contiguous();
  const at::Tensor cc_low_t = (cc2 - margin).clamp_min(0).sqrt().contiguous();
  const at::Tensor cc_up_t = (cc2 + margin).clamp_min(0).sqrt().contiguous();
  const double* cc_low = cc_low_t.data_ptr<double>();
  const double* cc_up = cc_up_t.data_ptr<double>();
  // Each cluster's `cap` nearest eligible members.
  std::vector<std::vector<Candidate>> nearest_members(k);
  for (int64_t i = 0; i < n; ++i)
    if (own[i] >= 0.0) offer(nearest_members[labels[i]], cap, {own[i], i});
  // R_j, widened so that rounding of the ranked (expanded) distances cannot
  // bring in a point from beyond it.
  std::vector<double> reach(k);
  at::parallel_for(0, k, 16, [&](int64_t lo, int64_t hi) {
    std::vector<double> best;
    for (int64_t j = lo; j < hi; ++j) {
      best.clear();
      for (int64_t a = 0; a < k; ++a)
        for (const Candidate& m : nearest_members[a]) best.push_back(cc_up[a * k + j] + m.first);
      std::nth_element(best.begin(), best.begin() + (cap - 1), best.end());
      const double r = best[cap - 1];
      reach[j] = r * (1.0 + 1e-4) + 1e-6 * std::sqrt(c_norms[j]) + 1e-300;
    }
  });
  // Per cluster a, the other centroids by d(a, j) - R_j: a member at r is a
  // candidate of the prefix whose key is <= r.
  std::vector<std::vector<std::pair<double, int32_t>>> order(k);
  at::parallel_for(0, k, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t a = lo; a < hi; ++a) {
      auto& o = order[a];
      o.resize(k);
      for (int64_t j = 0; j < k; ++j) o[j] = {cc_low[a * k + j] - reach[j], static_cast<int32_t>(j)};
      std::sort(o.begin(), o.end());
    }
  });
  const int64_t candidates = at::parallel_reduce(0, n, 1024, int64_t(0), [&](int64_t lo, int64_t hi, int64_t sum) {
    for (int64_t i = lo; i < hi; ++i) {
      if (own[i] < 0.0) continue;
      const auto& o = order[labels[i]];
      sum += std::upper_bound(o.begin(), o.end(), std::make_pair(own[i], std::numeric_limits<int32_t>::max())) -
             o.begin();
    }
    return sum;
  }, std::plus<int64_t>());
  if (scatter_cost > 0 && candidates * scatter_cost > n * k) return std::nullopt;
  const int64_t n_chunks = (n + cpu::kRowChunk - 1) / cpu::kRowChunk;
  const int64_t n_workers = at::get_num_threads();
  std::vector<std::vector<std::vector<Candidate>>> per_worker(n_workers, std::vector<std::vector<Candidate>>(k));
  at::parallel_for(0, n_chunks, 1, [&](int64_t lo, int64_t hi) {
    auto& lists = per_worker[at::get_thread_num()];
    std::vector<const scalar_t*> vecs(k);
    std::vector<scalar_t> dots(k);
    for (int64_t i = lo * cpu::kRowChunk; i < std::min(n, hi * cpu::kRowChunk); ++i) {
      if (own[i] < 0.0) continue;
      const auto& o = order[labels[i]];
      int64_t count = 0;
      while (count < k && o[count].first <= own[i]) {
        vecs[count] = pc + o[count].second * d;
        ++count;
      }
      const scalar_t* row = px + i * d;
      cpu::small_dots(&row, 1, vecs.data(), count, d, dots.data(), count);
      const double x_norm = cpu::sq_norm(row, d);
      for (int64_t t = 0; t < count; ++t) {
        const int64_t j = o[t].second;
        offer(lists[j], cap, {std::max(0.0, x_norm + c_norms[j] - 2.0 * static_cast<double>(dots[t])), i});
      }
    }
  });
  std::vector<std::vector<Candidate>> merged(k);
  for (int64_t j = 0; j < k; ++j)
    for (auto& lists : per_worker)
      for (const Candidate& cand : lists[j]) offer(merged[j], cap, cand);
  return merged;
}

// Serves the centroids in order from their short lists, rescanning x for a
// centroid whose list is used up (the contract of nearest_points).
template <typename scalar_t>
void serve_in_order(const at::Tensor& x, const at::Tensor& c, const bool* excluded,
                    const std::vector<std::vector<Candidate>>& lists, int64_t* po) {
  const int64_t n = x.size(0), k = c.size(0);
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
}

// The exclude mask's data (nullptr when none) after checking that enough
// points are left for the centroids.
const bool* checked_exclude(const at::Tensor& x, const at::Tensor& c, const std::optional<at::Tensor>& exclude_in,
                            at::Tensor& exclude, int64_t& n_excluded) {
  const int64_t n = x.size(0), k = c.size(0);
  n_excluded = 0;
  if (exclude_in.has_value()) {
    exclude = exclude_in->contiguous();
    n_excluded = exclude.sum().item<int64_t>();
  }
  TORCH_CHECK_VALUE(k <= n - n_excluded, "centroids has ", k, " rows but only ", n - n_excluded,
                    " points of x are not excluded; each centroid needs its own point");
  return exclude.defined() ? exclude.data_ptr<bool>() : nullptr;
}

at::Tensor nearest_points_cpu(const at::Tensor& x_in, const at::Tensor& c_in,
                              const std::optional<at::Tensor>& exclude_in) {
  check_nearest_args(x_in, c_in, exclude_in);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor c = c_in.contiguous();
  const int64_t n = x.size(0), k = c.size(0);
  at::Tensor exclude;
  int64_t n_excluded = 0;
  const bool* excluded = checked_exclude(x, c, exclude_in, exclude, n_excluded);
  at::Tensor out = at::empty({k}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "nearest_points_cpu", [&] {
    const auto lists = short_lists<scalar_t>(x, c, excluded, std::min(kShortList, n - n_excluded));
    serve_in_order<scalar_t>(x, c, excluded, lists, out.data_ptr<int64_t>());
  });
  return out;
}

// Above this many centroids the (k, k) tables of the labelled search cost
// more than they save.
constexpr int64_t kMaxLabelledK = 4096;

at::Tensor nearest_points_labelled_cpu(const at::Tensor& x_in, const at::Tensor& c_in, const at::Tensor& labels_in,
                                       const std::optional<at::Tensor>& exclude_in, int64_t scatter_cost) {
  TORCH_CHECK_VALUE(scatter_cost >= 0, "scatter_cost must be >= 0, got ", scatter_cost);
  check_nearest_args(x_in, c_in, exclude_in);
  CLUE_CHECK_DIM(labels_in, 1, "labels");
  CLUE_CHECK_DTYPE(labels_in, at::kLong, "labels");
  CLUE_CHECK_ROWS(labels_in, x_in.size(0), "labels");
  TORCH_CHECK_VALUE(x_in.device().is_cpu() && labels_in.device().is_cpu(),
                    "nearest_points_labelled runs on the CPU");
  const at::Tensor x = x_in.contiguous();
  const at::Tensor c = c_in.contiguous();
  const at::Tensor labels = labels_in.contiguous();
  const int64_t n = x.size(0), k = c.size(0);
  if (k > kMaxLabelledK) return nearest_points_cpu(x_in, c_in, exclude_in);
  const int64_t* pl = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    TORCH_CHECK_VALUE(pl[i] >= 0 && pl[i] < k, "labels must be in [0, ", k, "), got ", pl[i], " at position ", i);
  at::Tensor exclude;
  int64_t n_excluded = 0;
  const bool* excluded = checked_exclude(x, c, exclude_in, exclude, n_excluded);
  at::Tensor out = at::empty({k}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "nearest_points_labelled_cpu", [&] {
    const int64_t cap = std::min(kShortList, n - n_excluded);
    auto lists = short_lists_from_labels<scalar_t>(x, c, pl, excluded, cap, scatter_cost);
    if (!lists) lists = short_lists<scalar_t>(x, c, excluded, cap);
    serve_in_order<scalar_t>(x, c, excluded, *lists, out.data_ptr<int64_t>());
  });
  return out;
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CPU, m) {
  m.impl("nearest_points", &nearest_points_cpu);
}

TORCH_LIBRARY_FRAGMENT(clue_ext, m) {
  m.def("nearest_points_labelled(Tensor x, Tensor centroids, Tensor labels, Tensor? exclude=None, int scatter_cost=4) -> Tensor",
        &nearest_points_labelled_cpu);
}

} // namespace clue_ext
