// Weighted Lloyd iterations with per-point candidate lists and bounds.
//
// After a full pass (GEMM against every centroid) each point keeps its
// kListSize nearest centroids and a lower bound on its distance to all the
// others (the next distance). Centroids then drift a little per iteration,
// and bounds move by the drifts (triangle inequality):
// - a point whose upper bound to its own centroid stays below its lower bound
//   to every other centroid keeps its label without reading its features
//   (Hamerly's test);
// - otherwise, when only a few centroids moved, it is measured against its
//   own centroid and the moved ones: the others cannot have come nearer;
// - or else its listed centroids are measured, and if the nearest of them
//   is still strictly inside the bound on the unlisted ones, that is exact;
// - only the rest go back to a GEMM against all centroids.
// Centroids are recomputed only for clusters whose members changed; the
// others would come out bitwise the same.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/custom_class.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "../op_checks.h"
#include "dense_math.h"
#include "small_dots.h"
#include "weighted_means.h"

namespace clue_ext {
namespace {

constexpr int64_t kListSize = 8;
// Up to this many moved centroids, bounds are lowered centroid by centroid.
constexpr int64_t kFewMoved = 32;

// Relative slack on the bound test, covering the rounding of expanded
// squared distances.
template <typename scalar_t>
constexpr double bound_slack() {
  return sizeof(scalar_t) == 4 ? 1e-5 : 1e-12;
}

template <typename scalar_t>
class Lloyd {
 public:
  Lloyd(const at::Tensor& x, int64_t k)
      : x_(x),
        px_(x.data_ptr<scalar_t>()),
        n_(x.size(0)),
        d_(x.size(1)),
        k_(k),
        m_(std::min(k, kListSize)),
        lists_(n_ * m_),
        bound_(n_, -1.0),
        upper_(n_, 0.0),
        second_(n_, 0.0),
        x_norms_(cpu::row_sq_norms(x)) {}

  // One assignment against `c`, whose rows moved by `drift` (per centroid)
  // since the last one: labels (and each point's list and bounds) updated.
  void assign(const at::Tensor& c, const std::vector<double>& drift, int64_t* labels) {
    const at::Tensor c_norms_t = cpu::row_sq_norms(c);
    const double* c_norms = c_norms_t.data_ptr<double>();
    const double* xn = x_norms_.data_ptr<double>();
    const scalar_t* pc = c.data_ptr<scalar_t>();
    const double slack = bound_slack<scalar_t>();
    const double max_drift = drift.empty() ? 0.0 : *std::max_element(drift.begin(), drift.end());
    const MovedCentroids moved = moved_centroids(c, drift);
    const int64_t n_blocks = (n_ + cpu::kRowChunk - 1) / cpu::kRowChunk;
    std::atomic<int64_t> listed_ok{0}, listed_stale{0};
    cpu::for_blocks_dynamically(n_blocks, [&](const auto& next) {
      std::vector<int64_t> stale;
      std::vector<const scalar_t*> row_ptr(1), vec_ptrs(std::max<int64_t>(m_, moved.index.size() + 1));
      std::vector<scalar_t> dots(vec_ptrs.size());
      std::vector<int32_t> measured;
      at::Tensor gathered = at::empty({cpu::kRowChunk, d_}, x_.options());
      at::Tensor tile = at::empty({cpu::kRowChunk, k_}, x_.options());
      for (int64_t b; (b = next()) >= 0;) {
        const int64_t begin = b * cpu::kRowChunk, end = std::min(n_, begin + cpu::kRowChunk);
        stale.clear();
        for (int64_t i = begin; i < end; ++i) {
          if (bound_[i] < 0.0) {  // no list yet
            stale.push_back(i);
            continue;
          }
          upper_[i] += drift[labels[i]];
          if (moved.few) {
            const double second_before = second_[i], bound_before = bound_[i];
            lower_bounds_after_few_moves(i, labels[i], drift, moved);
            if (upper_[i] * (1.0 + slack) < second_[i]) continue;  // label stands
            if (!measure_moved(i, moved, pc, c_norms, xn[i], slack, second_before, bound_before, measured,
                               row_ptr, vec_ptrs, dots, labels))
              stale.push_back(i);
            continue;
          }
          bound_[i] = std::max(0.0, bound_[i] - max_drift);
          second_[i] = std::max(0.0, second_[i] - max_drift);
          if (upper_[i] * (1.0 + slack) < second_[i]) continue;  // label stands
          // Every 8th point measures its list anyway, to tell when lists pay again.
          const bool try_list = lists_pay || i % 8 == 0;
          if (try_list && measure_list(i, pc, c_norms, xn[i], slack, row_ptr, vec_ptrs, dots, labels)) {
            listed_ok.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          if (try_list) listed_stale.fetch_add(1, std::memory_order_relaxed);
          stale.push_back(i);
        }
        refresh(stale, c, c_norms, gathered, tile, labels);
      }
    });
    // While centroids move a lot, most lists fail their bound and measuring
    // them first only adds work: go straight to the GEMM until they hold.
    lists_pay = 2 * listed_ok.load() >= listed_stale.load();
  }

  // The centroids that moved since the last assignment and, when they are
  // few, the distance from every centroid to each of them.
  struct MovedCentroids {
    bool few = false;
    std::vector<int64_t> index;
    std::vector<double> from;  // (k, moved) centroid-to-moved-centroid distances, rounded down
  };

  MovedCentroids moved_centroids(const at::Tensor& c, const std::vector<double>& drift) const {
    MovedCentroids moved;
    for (int64_t j = 0; j < static_cast<int64_t>(drift.size()); ++j)
      if (drift[j] > 0.0) moved.index.push_back(j);
    const int64_t count = static_cast<int64_t>(moved.index.size());
    moved.few = count > 0 && count <= kFewMoved;
    if (!moved.few) return moved;
    // Differences in double, straight from the rows: no (k, d) double copy of
    // the centroids, which at small N would outweigh everything else.
    const scalar_t* pc = c.data_ptr<scalar_t>();
    moved.from.resize(k_ * count);
    at::parallel_for(0, k_, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j)
        for (int64_t q = 0; q < count; ++q)
          moved.from[j * count + q] =
              std::sqrt(cpu::sq_distance(pc + j * d_, pc + moved.index[q] * d_, d_)) * (1.0 - 1e-9);
    });
    return moved;
  }

  // A centroid j that moved by drift[j] is at least max(old bound - drift[j],
  // d(c_a, c_j) - upper) away from a point labelled a (triangle inequality),
  // so a far centroid's move does not lower a point's bounds. Centroids that
  // did not move keep the old bounds.
  void lower_bounds_after_few_moves(int64_t i, int64_t a, const std::vector<double>& drift,
                                    const MovedCentroids& moved) {
    const int64_t count = static_cast<int64_t>(moved.index.size());
    const double* from_a = moved.from.data() + a * count;
    double others = second_[i], unlisted = bound_[i];
    for (int64_t q = 0; q < count; ++q) {
      const int64_t j = moved.index[q];
      if (j == a) continue;
      const double reach = from_a[q] - upper_[i];
      others = std::min(others, std::max(second_[i] - drift[j], reach));
      unlisted = std::min(unlisted, std::max(bound_[i] - drift[j], reach));
    }
    second_[i] = std::max(0.0, others);
    bound_[i] = std::max(0.0, unlisted);
  }

  // Exact squared distance of each point to its centroid.
  void exact_sq_dists(const at::Tensor& c, const int64_t* labels, scalar_t* out) const {
    const scalar_t* pc = c.data_ptr<scalar_t>();
    at::parallel_for(0, n_, 1024, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i)
        out[i] = static_cast<scalar_t>(cpu::sq_distance(px_ + i * d_, pc + labels[i] * d_, d_));
    });
  }

 private:
  using Ranked = std::pair<double, int32_t>;  // (squared distance, centroid), ordered

  // Point i against the centroids `ids`: the nearest two, by (distance,
  // index); visit(v) sees every measured pair.
  template <typename Visit>
  std::pair<Ranked, Ranked> nearest_two(int64_t i, const int32_t* ids, int64_t count, const scalar_t* pc,
                                        const double* c_norms, double x_norm,
                                        std::vector<const scalar_t*>& row_ptr,
                                        std::vector<const scalar_t*>& vec_ptrs, std::vector<scalar_t>& dots,
                                        const Visit& visit) const {
    row_ptr[0] = px_ + i * d_;
    for (int64_t t = 0; t < count; ++t) vec_ptrs[t] = pc + ids[t] * d_;
    cpu::small_dots(row_ptr.data(), 1, vec_ptrs.data(), count, d_, dots.data(), count);
    Ranked best{std::numeric_limits<double>::infinity(), 0}, next = best;
    for (int64_t t = 0; t < count; ++t) {
      const Ranked v{std::max(0.0, x_norm + c_norms[ids[t]] - 2.0 * static_cast<double>(dots[t])), ids[t]};
      if (v < best) {
        next = best;
        best = v;
      } else if (v < next) {
        next = v;
      }
      visit(v);
    }
    return {best, next};
  }

  // Whether squared distance `d2` is certainly below `floor`^2, rounding of
  // the expanded distances included.
  static bool certainly_below(double d2, double floor, double x_norm, double slack) {
    const double reach = floor * floor;
    return d2 + slack * (x_norm + d2 + reach) < reach;
  }

  // Point i is labelled `best`; no other centroid is nearer than `next` or
  // than `others` (a bound on the ones not measured).
  void settle(int64_t i, const Ranked& best, const Ranked& next, double others, int64_t* labels) {
    labels[i] = best.second;
    upper_[i] = std::sqrt(best.first);
    second_[i] = std::min(others, std::sqrt(next.first));
  }

  // Measures point i against its listed centroids. Returns false when an
  // unlisted centroid might be nearer (the point needs a full pass).
  bool measure_list(int64_t i, const scalar_t* pc, const double* c_norms, double x_norm, double slack,
                    std::vector<const scalar_t*>& row_ptr, std::vector<const scalar_t*>& vec_ptrs,
                    std::vector<scalar_t>& dots, int64_t* labels) {
    const auto [best, next] = nearest_two(i, lists_.data() + i * m_, m_, pc, c_norms, x_norm, row_ptr, vec_ptrs,
                                          dots, [](const Ranked&) {});
    // Every centroid outside the list is at least bound_ away.
    if (m_ < k_ && !certainly_below(best.first, bound_[i], x_norm, slack)) return false;
    settle(i, best, next, bound_[i], labels);
    return true;
  }

  // Measures point i against its own centroid and every moved one; the
  // others did not move, so their old bounds (`second_before`, and
  // `bound_before` for the unlisted ones) still hold. Returns false when an
  // unmoved centroid might now be the nearest (the point needs a full pass).
  bool measure_moved(int64_t i, const MovedCentroids& moved, const scalar_t* pc, const double* c_norms,
                     double x_norm, double slack, double second_before, double bound_before,
                     std::vector<int32_t>& ids, std::vector<const scalar_t*>& row_ptr,
                     std::vector<const scalar_t*>& vec_ptrs, std::vector<scalar_t>& dots, int64_t* labels) {
    const int32_t own = static_cast<int32_t>(labels[i]);
    ids.assign(1, own);
    for (int64_t j : moved.index)
      if (j != own) ids.push_back(static_cast<int32_t>(j));
    const int32_t* list = lists_.data() + i * m_;
    double unlisted = bound_before;
    const auto [best, next] = nearest_two(
        i, ids.data(), static_cast<int64_t>(ids.size()), pc, c_norms, x_norm, row_ptr, vec_ptrs, dots,
        [&](const Ranked& v) {
          if (std::find(list, list + m_, v.second) == list + m_) unlisted = std::min(unlisted, std::sqrt(v.first));
        });
    // Every unmoved centroid but the old label's is at least second_before away.
    if (!certainly_below(best.first, second_before, x_norm, slack)) return false;
    settle(i, best, next, second_before, labels);
    bound_[i] = unlisted;
    return true;
  }

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
    const int64_t keep = m_ + (m_ < k_ ? 1 : 0);
    // k >= 1 (the op and LloydAssigner check it), so the list holds 1 to kListSize + 1 entries.
    TORCH_INTERNAL_ASSERT(keep >= 1 && keep <= kListSize + 1);
    std::vector<scalar_t> c_norms_s(c_norms, c_norms + k_), ranked(k_);
    double near_d[kListSize + 1];
    int32_t near_j[kListSize + 1];
    for (int64_t r = 0; r < count; ++r) {
      const int64_t i = stale[r];
      // ||c||^2 - 2 x.c ranks the centroids as the full distance does (||x||^2
      // is common to the row); clamped where the distance would go below 0,
      // so that everything within rounding of the point ties. One vectorised
      // pass, then a scan that rarely has to insert.
      const scalar_t floor = static_cast<scalar_t>(-xn[i]);
      const scalar_t* row = pt + r * k_;
      for (int64_t j = 0; j < k_; ++j) ranked[j] = std::max(c_norms_s[j] - 2 * row[j], floor);
      // The `keep` smallest (value, index), sorted. Centroids come in index
      // order, so an equal value never displaces an earlier one.
      int64_t filled = 0;
      for (int64_t j = 0; j < k_; ++j) {
        const double v = static_cast<double>(ranked[j]);
        if (filled == keep && !(v < near_d[keep - 1])) continue;
        int64_t pos = filled < keep ? filled++ : keep - 1;
        for (; pos > 0 && v < near_d[pos - 1]; --pos) {
          near_d[pos] = near_d[pos - 1];
          near_j[pos] = near_j[pos - 1];
        }
        near_d[pos] = v;
        near_j[pos] = static_cast<int32_t>(j);
      }
      for (int64_t q = 0; q < keep; ++q) near_d[q] = std::max(0.0, xn[i] + near_d[q]);
      int32_t* list = lists_.data() + i * m_;
      for (int64_t q = 0; q < m_; ++q) list[q] = near_j[q];
      bound_[i] = m_ < k_ ? std::sqrt(near_d[m_]) : std::numeric_limits<double>::infinity();
      labels[i] = near_j[0];
      upper_[i] = std::sqrt(near_d[0]);
      second_[i] = k_ > 1 ? std::sqrt(near_d[1]) : std::numeric_limits<double>::infinity();
    }
  }

  bool lists_pay = true;
  const at::Tensor& x_;
  const scalar_t* px_;
  const int64_t n_, d_, k_, m_;
  std::vector<int32_t> lists_;  // (n, m) nearest centroids, nearest first
  std::vector<double> bound_;   // distance below which no unlisted centroid lies; < 0: none yet
  std::vector<double> upper_;   // bound above the distance to the label's centroid
  std::vector<double> second_;  // distance below which no centroid but the label's lies
  at::Tensor x_norms_;
};

// Moves each cluster of zero total weight onto a point of positive weight
// that costs the most, one per cluster in cluster order: the largest w * d^2,
// d measured exactly from the point to its centroid before the update (the
// bounds leave no current distance for points they skipped); ties go to the
// lower point index.
template <typename scalar_t>
bool relocate_empty(const Lloyd<scalar_t>& state, const at::Tensor& x, const scalar_t* w, const at::Tensor& c_before,
                    const int64_t* labels, const double* cluster_w, at::Tensor& c) {
  const int64_t n = x.size(0), k = c.size(0);
  std::vector<int64_t> empty;
  for (int64_t j = 0; j < k; ++j)
    if (!(cluster_w[j] > 0.0)) empty.push_back(j);
  if (empty.empty()) return false;
  std::vector<scalar_t> d2(n);
  state.exact_sq_dists(c_before, labels, d2.data());
  std::vector<std::pair<double, int64_t>> cost;
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(w[i]) * static_cast<double>(d2[i]);
    if (w[i] > 0 && v > 0.0) cost.push_back({-v, i});
  }
  const size_t take = std::min(empty.size(), cost.size());
  std::partial_sort(cost.begin(), cost.begin() + static_cast<std::ptrdiff_t>(take), cost.end());
  for (size_t e = 0; e < take; ++e) c[empty[e]].copy_(x[cost[e].second]);
  return true;
}

// Flags the clusters whose members differ between two labelings.
void mark_changed(const int64_t* now, const int64_t* before, int64_t n, std::vector<char>& touched) {
  for (int64_t i = 0; i < n; ++i) {
    if (now[i] == before[i]) continue;
    touched[now[i]] = 1;
    if (before[i] >= 0) touched[before[i]] = 1;
  }
}

template <typename scalar_t>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> run_lloyd(const at::Tensor& x, const at::Tensor& w,
                                                                     at::Tensor c, int64_t max_iter, double tol) {
  const int64_t n = x.size(0), d = x.size(1), k = c.size(0);
  Lloyd<scalar_t> state(x, k);
  at::Tensor labels = at::empty({n}, x.options().dtype(at::kLong));
  at::Tensor previous = at::full({n}, -1, x.options().dtype(at::kLong));
  at::Tensor cluster_w = at::zeros({k}, x.options().dtype(at::kDouble));
  int64_t* pl = labels.data_ptr<int64_t>();
  int64_t* pp = previous.data_ptr<int64_t>();
  std::vector<double> drift(k, 0.0);
  std::vector<char> touched(k);
  bool settled = false;  // labels unchanged: the centroids are their means
  bool means_current = false;  // c holds the means of `previous` (no relocation since)
  int64_t iter = 0;
  while (iter < max_iter) {
    ++iter;
    state.assign(c, drift, pl);
    std::fill(touched.begin(), touched.end(), means_current ? 0 : 1);
    if (means_current) mark_changed(pl, pp, n, touched);
    at::Tensor next = at::empty_like(c);
    cpu::weighted_means<scalar_t>(x, w, pl, c, next, cluster_w.data_ptr<double>(), touched.data());
    means_current = true;
    if (relocate_empty<scalar_t>(state, x, w.data_ptr<scalar_t>(), c, pl, cluster_w.data_ptr<double>(), next))
      means_current = false;
    double total_shift = 0.0;
    const scalar_t* p_next = next.data_ptr<scalar_t>();
    const scalar_t* p_now = c.data_ptr<scalar_t>();
    for (int64_t j = 0; j < k; ++j) {
      const double shift = cpu::sq_distance(p_next + j * d, p_now + j * d, d);
      drift[j] = std::sqrt(shift);
      total_shift += shift;
    }
    c = next;
    if (!means_current) {
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

// The assignment step of the CPU Lloyd loop, with its per-point lists and
// bounds kept between calls (ops.h: LloydAssigner).
class LloydAssigner : public torch::CustomClassHolder {
 public:
  LloydAssigner(const at::Tensor& x, int64_t k) : x_(x.contiguous()), k_(k) {
    check_points(x_);
    TORCH_CHECK_VALUE(x_.device().is_cpu(), "LloydAssigner runs on the CPU, got x on ", x_.device());
    TORCH_CHECK_VALUE(k >= 1, "k must be >= 1, got ", k);
    labels_ = at::zeros({x_.size(0)}, x_.options().dtype(at::kLong));
    if (x_.scalar_type() == at::kDouble) {
      double_ = std::make_unique<Lloyd<double>>(x_, k);
    } else {
      TORCH_CHECK_VALUE(x_.scalar_type() == at::kFloat, "x must be float32 or float64, got ", x_.scalar_type());
      float_ = std::make_unique<Lloyd<float>>(x_, k);
    }
  }

  at::Tensor assign(const at::Tensor& centroids_in, const at::Tensor& drift_in) {
    const at::Tensor c = checked_centroids(centroids_in);
    TORCH_CHECK_VALUE(drift_in.device().is_cpu() && drift_in.scalar_type() == at::kDouble,
                      "drift must be a float64 CPU tensor, got ", drift_in.scalar_type(), " on ", drift_in.device());
    const at::Tensor drift_t = drift_in.contiguous();
    TORCH_CHECK_VALUE(drift_t.dim() == 1 && drift_t.size(0) == k_, "drift must have shape (", k_, "), got ",
                      drift_t.sizes());
    const double* pd = drift_t.const_data_ptr<double>();
    const std::vector<double> drift(pd, pd + k_);
    int64_t* labels = labels_.data_ptr<int64_t>();
    if (double_) {
      double_->assign(c, drift, labels);
    } else {
      float_->assign(c, drift, labels);
    }
    return labels_.clone();
  }

  at::Tensor sq_dists(const at::Tensor& centroids_in) const {
    const at::Tensor c = checked_centroids(centroids_in);
    at::Tensor sq = at::empty({x_.size(0)}, x_.options());
    const int64_t* labels = labels_.const_data_ptr<int64_t>();
    if (double_) {
      double_->exact_sq_dists(c, labels, sq.data_ptr<double>());
    } else {
      float_->exact_sq_dists(c, labels, sq.data_ptr<float>());
    }
    return sq;
  }

 private:
  at::Tensor checked_centroids(const at::Tensor& centroids) const {
    check_centroids(x_, centroids);
    TORCH_CHECK_VALUE(centroids.size(0) == k_, "centroids must have ", k_, " rows, got ", centroids.size(0));
    return centroids.contiguous();
  }

  // x_ before the states: they keep a reference to it.
  const at::Tensor x_;
  const int64_t k_;
  at::Tensor labels_;
  std::unique_ptr<Lloyd<float>> float_;
  std::unique_ptr<Lloyd<double>> double_;
};

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CPU, m) {
  m.impl("lloyd", &lloyd_cpu);
}

TORCH_LIBRARY_FRAGMENT(clue_ext, m) {
  m.class_<LloydAssigner>("LloydAssigner")
      .def(torch::init<at::Tensor, int64_t>())
      .def("assign", &LloydAssigner::assign)
      .def("sq_dists", &LloydAssigner::sq_dists);
}

} // namespace clue_ext
