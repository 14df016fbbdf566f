// Weighted Lloyd iterations with per-point candidate lists.
//
// After a full pass (GEMM against every centroid) each point keeps its
// kListSize nearest centroids and a lower bound on its distance to all the
// others (the next distance). Centroids then drift a little per iteration:
// the bound drops by the largest drift, and a point whose nearest listed
// centroid is still strictly inside the bound keeps an exact answer from its
// short list alone. Only points that fail the test go back to a GEMM. With
// few centroids the lists hold them all and no bound is needed.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../op_checks.h"
#include "dense_math.h"
#include "small_dots.h"
#include "weighted_means.h"

namespace clue_ext {
namespace {

constexpr int64_t kListSize = 8;

// Relative slack on the bound test, covering the rounding of expanded
// squared distances.
template <typename scalar_t>
constexpr double bound_slack() {
  return sizeof(scalar_t) == 4 ? 1e-5 : 1e-12;
}

template <typename scalar_t>
class Lloyd {
 public:
  Lloyd(const at::Tensor& x, const at::Tensor& w, int64_t k)
      : x_(x),
        px_(x.data_ptr<scalar_t>()),
        pw_(w.data_ptr<scalar_t>()),
        n_(x.size(0)),
        d_(x.size(1)),
        k_(k),
        m_(std::min(k, kListSize)),
        lists_(n_ * m_),
        bound_(n_, -1.0),
        d2_(n_),
        x_norms_(cpu::row_sq_norms(x)) {}

  // One assignment against `c`: labels (and each point's list and bound)
  // updated, d2_ holding the expanded squared distance to the label.
  void assign(const at::Tensor& c, double drift, int64_t* labels) {
    const at::Tensor c_norms_t = cpu::row_sq_norms(c);
    const double* c_norms = c_norms_t.data_ptr<double>();
    const double* xn = x_norms_.data_ptr<double>();
    const scalar_t* pc = c.data_ptr<scalar_t>();
    const double slack = bound_slack<scalar_t>();
    const int64_t n_blocks = (n_ + cpu::kRowChunk - 1) / cpu::kRowChunk;
    at::parallel_for(0, n_blocks, 1, [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> stale;
      std::vector<const scalar_t*> row_ptr(1), vec_ptrs(m_);
      std::vector<scalar_t> dots(m_);
      at::Tensor gathered = at::empty({cpu::kRowChunk, d_}, x_.options());
      at::Tensor tile = at::empty({cpu::kRowChunk, k_}, x_.options());
      for (int64_t b = lo; b < hi; ++b) {
        const int64_t begin = b * cpu::kRowChunk, end = std::min(n_, begin + cpu::kRowChunk);
        stale.clear();
        for (int64_t i = begin; i < end; ++i) {
          if (bound_[i] < 0.0) {  // no list yet
            stale.push_back(i);
            continue;
          }
          int32_t* list = lists_.data() + i * m_;
          row_ptr[0] = px_ + i * d_;
          for (int64_t t = 0; t < m_; ++t) vec_ptrs[t] = pc + list[t] * d_;
          cpu::small_dots(row_ptr.data(), 1, vec_ptrs.data(), m_, d_, dots.data(), m_);
          double best = std::numeric_limits<double>::infinity();
          int32_t best_c = list[0];
          for (int64_t t = 0; t < m_; ++t) {
            const double v = std::max(0.0, xn[i] + c_norms[list[t]] - 2.0 * static_cast<double>(dots[t]));
            if (v < best || (v == best && list[t] < best_c)) {
              best = v;
              best_c = list[t];
            }
          }
          if (m_ < k_) {
            // Every centroid outside the list is at least bound_ away.
            bound_[i] = std::max(0.0, bound_[i] - drift);
            const double reach = bound_[i] * bound_[i];
            if (!(best + slack * (xn[i] + best + reach) < reach)) {
              stale.push_back(i);
              continue;
            }
          }
          labels[i] = best_c;
          d2_[i] = best;
        }
        refresh(stale, c, c_norms, gathered, tile, labels);
      }
    });
  }

  // Exact squared distance of each point to its centroid.
  void exact_sq_dists(const at::Tensor& c, const int64_t* labels, scalar_t* out) const {
    const scalar_t* pc = c.data_ptr<scalar_t>();
    at::parallel_for(0, n_, 1024, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i)
        out[i] = static_cast<scalar_t>(cpu::sq_distance(px_ + i * d_, pc + labels[i] * d_, d_));
    });
  }

  const std::vector<double>& sq_dists() const { return d2_; }

 private:
  // Full distances of the `stale` points to every centroid: a new list (the
  // m nearest, by (distance, index)) and bound (the next distance).
  void refresh(const std::vector<int64_t>& stale, const at::Tensor& c, const double* c_norms,
               at::Tensor& gathered, at::Tensor& tile, int64_t* labels) {
    if (stale.empty()) return;
    const int64_t count = static_cast<int64_t>(stale.size());
    scalar_t* pg = gathered.data_ptr<scalar_t>();
    for (int64_t r = 0; r < count; ++r) std::copy_n(px_ + stale[r] * d_, d_, pg + r * d_);
    at::Tensor t = tile.narrow(0, 0, count);
    cpu::dot_tile(gathered.narrow(0, 0, count), c, t);
    const scalar_t* pt = t.data_ptr<scalar_t>();
    const double* xn = x_norms_.data_ptr<double>();
    std::vector<std::pair<double, int32_t>> nearest;
    for (int64_t r = 0; r < count; ++r) {
      const int64_t i = stale[r];
      nearest.clear();
      const size_t keep = static_cast<size_t>(m_ + (m_ < k_ ? 1 : 0));
      for (int64_t j = 0; j < k_; ++j) {
        const std::pair<double, int32_t> cand{
            std::max(0.0, xn[i] + c_norms[j] - 2.0 * static_cast<double>(pt[r * k_ + j])), static_cast<int32_t>(j)};
        if (nearest.size() == keep && !(cand < nearest.back())) continue;
        nearest.insert(std::upper_bound(nearest.begin(), nearest.end(), cand), cand);
        if (nearest.size() > keep) nearest.pop_back();
      }
      int32_t* list = lists_.data() + i * m_;
      for (int64_t t = 0; t < m_; ++t) list[t] = nearest[t].second;
      bound_[i] = m_ < k_ ? std::sqrt(nearest[m_].first) : std::numeric_limits<double>::infinity();
      labels[i] = nearest[0].second;
      d2_[i] = nearest[0].first;
    }
  }

  const at::Tensor& x_;
  const scalar_t* px_;
  const scalar_t* pw_;
  const int64_t n_, d_, k_, m_;
  std::vector<int32_t> lists_;  // (n, m) nearest centroids, nearest first
  std::vector<double> bound_;   // distance below which no unlisted centroid lies; < 0: none yet
  std::vector<double> d2_;      // expanded squared distance to the label
  at::Tensor x_norms_;
};

// Moves each cluster of zero total weight onto a point of positive weight
// that costs the most (largest w * d^2), one per cluster in cluster order.
template <typename scalar_t>
bool relocate_empty(const at::Tensor& x, const scalar_t* w, const std::vector<double>& d2,
                    const double* cluster_w, at::Tensor& c) {
  const int64_t n = x.size(0), d = x.size(1), k = c.size(0);
  std::vector<int64_t> empty;
  for (int64_t j = 0; j < k; ++j)
    if (!(cluster_w[j] > 0.0)) empty.push_back(j);
  if (empty.empty()) return false;
  std::vector<std::pair<double, int64_t>> cost;
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(w[i]) * d2[i];
    if (w[i] > 0 && v > 0.0) cost.push_back({-v, i});
  }
  const size_t take = std::min(empty.size(), cost.size());
  std::partial_sort(cost.begin(), cost.begin() + take, cost.end());
  for (size_t e = 0; e < take; ++e) c[empty[e]].copy_(x[cost[e].second]);
  return true;
}

template <typename scalar_t>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> run_lloyd(const at::Tensor& x, const at::Tensor& w,
                                                                     at::Tensor c, int64_t max_iter, double tol) {
  const int64_t n = x.size(0), k = c.size(0);
  Lloyd<scalar_t> state(x, w, k);
  at::Tensor labels = at::empty({n}, x.options().dtype(at::kLong));
  at::Tensor previous = at::full({n}, -1, x.options().dtype(at::kLong));
  at::Tensor cluster_w = at::empty({k}, x.options().dtype(at::kDouble));
  int64_t* pl = labels.data_ptr<int64_t>();
  double drift = 0.0;
  bool settled = false;  // labels unchanged: the centroids are their means
  int64_t iter = 0;
  while (iter < max_iter) {
    ++iter;
    state.assign(c, drift, pl);
    at::Tensor next = at::empty_like(c);
    cpu::weighted_means<scalar_t>(x, w, pl, c, next, cluster_w.data_ptr<double>());
    bool relocated = relocate_empty<scalar_t>(x, w.data_ptr<scalar_t>(), state.sq_dists(),
                                              cluster_w.data_ptr<double>(), next);
    const at::Tensor shift = (next.to(at::kDouble) - c.to(at::kDouble)).pow(2).sum(1);
    drift = std::sqrt(shift.max().item<double>());
    const double total_shift = shift.sum().item<double>();
    c = next;
    if (relocated) {
      previous.copy_(labels);
      continue;
    }
    if (at::equal(labels, previous)) {
      settled = true;
      break;
    }
    if (total_shift <= tol) break;
    previous.copy_(labels);
  }
  if (!settled) state.assign(c, drift, pl);  // the labels must describe the final centroids
  at::Tensor sq = at::empty({n}, x.options());
  state.exact_sq_dists(c, pl, sq.data_ptr<scalar_t>());
  return {c, labels, sq, at::scalar_tensor(iter, x.options().dtype(at::kLong))};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lloyd_cpu(const at::Tensor& x_in, const at::Tensor& w_in,
                                                                     const at::Tensor& c_in, int64_t max_iter,
                                                                     double tol) {
  check_lloyd_args(x_in, w_in, c_in, max_iter, tol);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor w = w_in.contiguous();
  const at::Tensor c = c_in.contiguous().clone();
  std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lloyd_cpu", [&] { out = run_lloyd<scalar_t>(x, w, c, max_iter, tol); });
  return out;
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CPU, m) {
  m.impl("lloyd", &lloyd_cpu);
}

} // namespace clue_ext
