#pragma once

// Nearest-centroid labels for centroids that move a little between calls
// (Lloyd's assignment step), measuring only what the bounds cannot settle.
//
// Every point keeps an upper bound on the distance to its own centroid and
// lower bounds on the distance to the others, all moved by the centroids'
// drifts (triangle inequality):
// - per group of nearby centroids (Yinyang, about k/10 groups), a lower bound
//   on every member but the label: the first gate, a few floats per point.
//   A group bound drops by the largest drift in its group (groups of about 5
//   when they are the only bounds: a failing group costs all its members);
// - per centroid (Elkan), when the (N, k) floats fit the memory cap: one
//   moving centroid then only voids the bounds to itself.
// Bounds are kept lazily: a stored bound is "bound + cumulative drift of its
// centroid (or group) when it was set", so no pass over (N, k) is needed to
// lower them; the current bound is the stored value minus today's total.
// A point whose groups all clear its upper bound keeps its label unread.
// Otherwise its own distance is measured (tightening the upper bound), then
// the centroids whose bounds still fail; when too many do, the point goes to
// a GEMM against every centroid instead. Sparse distances are computed
// grouped by centroid, so each centroid is read once per block of points.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#include "bound_math.h"
#include "dense_math.h"
#include "small_dots.h"

namespace clue_ext {
namespace cpu {

// Relative slack on expanded squared distances ||x||^2 + ||c||^2 - 2 x.c,
// covering their rounding (a float dot over D terms errs by far less than
// this times ||x||^2 + ||c||^2 for the D of interest).
template <typename scalar_t>
constexpr double expansion_slack() {
  return sizeof(scalar_t) == 4 ? 3e-5 : 1e-12;
}

// Centroids per Yinyang group.
constexpr int64_t kGroupSize = 10;
// Centroids per group when group bounds are all there is (above the memory
// cap): a failing group then costs its members' distances, so smaller groups.
constexpr int64_t kGroupSizeAlone = 5;
// A point with more candidates than k / kScatterCost goes to the GEMM: a
// scattered distance costs several times one computed inside a GEMM.
constexpr int64_t kScatterCost = 4;

// A float not above v >= 0 (a stored lower bound must not round up): the
// product lowers v by more than the half ulp that rounding to float can add.
inline float float_down(double v) { return static_cast<float>(v * (1.0 - 0x1p-22)); }

// Which group each centroid belongs to: a few plain Lloyd iterations over the
// centroids themselves, from evenly spaced ones, so nearby centroids share
// a group and a group bound is tight.
inline std::vector<int32_t> group_centroids(const at::Tensor& c, int64_t groups) {
  const int64_t k = c.size(0);
  std::vector<int32_t> group_of(k, 0);
  if (groups <= 1) return group_of;
  const at::Tensor cd = c.to(at::kDouble);
  std::vector<int64_t> spaced(groups);
  for (int64_t g = 0; g < groups; ++g) spaced[g] = g * k / groups;
  const at::Tensor pick = at::tensor(spaced, cd.options().dtype(at::kLong));
  at::Tensor centres = cd.index_select(0, pick);
  const at::Tensor c_norms = cd.pow(2).sum(1, true);
  at::Tensor labels;
  for (int iter = 0; iter < 6; ++iter) {
    labels = (c_norms - 2 * at::mm(cd, centres.t()) + centres.pow(2).sum(1).unsqueeze(0)).argmin(1);
    const at::Tensor sums = at::zeros_like(centres).index_add_(0, labels, cd);
    const at::Tensor counts = at::bincount(labels, {}, groups).to(at::kDouble).unsqueeze(1);
    centres = at::where(counts > 0, sums / counts.clamp_min(1.0), centres);
  }
  const int64_t* pl = labels.data_ptr<int64_t>();
  for (int64_t j = 0; j < k; ++j) group_of[j] = static_cast<int32_t>(pl[j]);
  return group_of;
}

template <typename scalar_t>
class BoundedAssigner {
 public:
  // `bound_bytes`: memory the per-centroid bounds may take; above it only
  // group bounds are kept, in at most that many bytes too.
  BoundedAssigner(const at::Tensor& x, int64_t k, int64_t bound_bytes)
      : px_(x.data_ptr<scalar_t>()),
        n_(x.size(0)),
        d_(x.size(1)),
        k_(k),
        x_(x),
        x_norms_t_(row_sq_norms(x)),
        x_norms_(x_norms_t_.data_ptr<double>()) {
    per_centroid_ = n_ * k_ * static_cast<int64_t>(sizeof(float)) <= bound_bytes;
    const int64_t group_size = per_centroid_ ? kGroupSize : kGroupSizeAlone;
    const int64_t wanted = std::max<int64_t>(1, (k_ + group_size - 1) / group_size);
    const int64_t fit = std::max<int64_t>(1, bound_bytes / (n_ * static_cast<int64_t>(sizeof(float))));
    groups_ = per_centroid_ ? wanted : std::min(wanted, fit);
  }

  bool per_centroid() const { return per_centroid_; }
  int64_t groups() const { return groups_; }

  // Labels for centroids `c`, whose rows moved by `drift` since the last call
  // (ignored on the first). Returns the number of point-centroid distances
  // computed.
  int64_t assign(const at::Tensor& c, const std::vector<double>& drift, int64_t* labels) {
    const at::Tensor c_norms_t = row_sq_norms(c);
    c_norms_ = c_norms_t.data_ptr<double>();
    pc_ = c.data_ptr<scalar_t>();
    c_ = &c;
    if (!started_) {
      start(c);
    } else {
      for (int64_t j = 0; j < k_; ++j) {
        cum_[position_[j]] += drift[j];
        group_drift_[group_of_[j]] = std::max(group_drift_[group_of_[j]], drift[j]);
      }
      for (int64_t g = 0; g < groups_; ++g) {
        group_cum_[g] += group_drift_[g];
        group_drift_[g] = 0.0;
      }
    }
    drift_ = started_ ? drift.data() : nullptr;
    const int64_t n_blocks = (n_ + kRowChunk - 1) / kRowChunk;
    std::atomic<int64_t> computed{0};
    for_blocks_dynamically(n_blocks, [&](const auto& next) {
      Scratch s(k_, d_, x_);
      int64_t mine = 0;
      for (int64_t b; (b = next()) >= 0;) {
        const int64_t begin = b * kRowChunk, end = std::min(n_, begin + kRowChunk);
        mine += block(begin, end, labels, s);
      }
      computed.fetch_add(mine, std::memory_order_relaxed);
    });
    started_ = true;
    c_ = nullptr;
    return computed.load();
  }

  // Exact squared distance of each point to its label's centroid.
  void exact_sq_dists(const at::Tensor& c, const int64_t* labels, scalar_t* out) const {
    const scalar_t* pc = c.data_ptr<scalar_t>();
    at::parallel_for(0, n_, 1024, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) out[i] = static_cast<scalar_t>(sq_distance(px_ + i * d_, pc + labels[i] * d_, d_));
    });
  }

 private:
  struct Scratch {
    Scratch(int64_t k, int64_t d, const at::Tensor& x)
        : gathered(at::empty({kRowChunk, d}, x.options())),
          tile(at::empty({kRowChunk, k}, x.options())),
          measured(k, -1.0),
          candidates(k) {}
    at::Tensor gathered, tile;
    std::vector<int64_t> open, full;             // points to measure; points for the GEMM
    std::vector<double> own;                     // squared distance of each open point to its label
    std::vector<double> upper;                   // each open point's tight upper bound
    std::vector<int32_t> pair_row, pair_centroid;  // (open point, centroid) pairs to measure
    std::vector<double> pair_d2;
    std::vector<int32_t> order, bucket;          // pairs sorted by centroid
    std::vector<const scalar_t*> ptrs;
    std::vector<scalar_t> dots;
    std::vector<int64_t> row_pairs;              // each open point's first pair
    std::vector<double> measured;                // (k,) one point's measured squared distances, -1 unmeasured
    std::vector<double> lower;                   // (k,) one point's lower bounds (the GEMM's)
    std::vector<int32_t> candidates;             // (k,) one point's centroids to measure
    std::vector<char> failing;                   // (groups,) one point's groups that fail its bound
  };

  void start(const at::Tensor& c) {
    group_of_ = group_centroids(c, std::min(groups_, k_));
    members_.assign(groups_ + 1, 0);
    for (int32_t g : group_of_) ++members_[g + 1];
    for (int64_t g = 0; g < groups_; ++g) members_[g + 1] += members_[g];
    member_list_.resize(k_);
    std::vector<int64_t> fill(members_.begin(), members_.end() - 1);
    position_.resize(k_);
    for (int64_t j = 0; j < k_; ++j) {
      position_[j] = fill[group_of_[j]];
      member_list_[fill[group_of_[j]]++] = static_cast<int32_t>(j);
    }
    cum_.assign(k_, 0.0);
    group_cum_.assign(groups_, 0.0);
    group_drift_.assign(groups_, 0.0);
    upper_.assign(n_, 0.0);
    // Left unset: the first call measures every point and writes all of its
    // bounds (zeroing 96 MB at 48k x 500 cost a tenth of that call).
    group_bound_.reset(new float[n_ * groups_]);
    if (per_centroid_) bound_.reset(new float[n_ * k_]);
  }

  double err(int64_t i, int64_t j) const {
    return expansion_slack<scalar_t>() * (x_norms_[i] + c_norms_[j]);
  }
  double lower_of(int64_t i, int64_t j, double d2) const { return std::sqrt(std::max(0.0, d2 - err(i, j))); }
  double upper_of(int64_t i, int64_t j, double d2) const { return std::sqrt(d2 + err(i, j)); }
  double expanded(int64_t i, int64_t j, double dot) const {
    return std::max(0.0, x_norms_[i] + c_norms_[j] - 2.0 * dot);
  }
  double group_lower(int64_t i, int64_t g) const {
    return static_cast<double>(group_bound_[i * groups_ + g]) - group_cum_[g];
  }
  void set_group_lower(int64_t i, int64_t g, double v) { group_bound_[i * groups_ + g] = float_down(v + group_cum_[g]); }
  // Per-centroid bounds and cumulative drifts are stored in group order
  // (position_), so that a group's bounds are contiguous.
  double centroid_lower(int64_t i, int64_t j) const {
    const int64_t q = position_[j];
    return static_cast<double>(bound_[i * k_ + q]) - cum_[q];
  }
  void set_centroid_lower(int64_t i, int64_t j, double v) {
    const int64_t q = position_[j];
    bound_[i * k_ + q] = float_down(v + cum_[q]);
  }
  // Smallest per-centroid bound of point i in group g, positions `skip` and
  // `skip_too` left out.
  double smallest_in_group(int64_t i, int64_t g, int64_t skip, int64_t skip_too = -1) const {
    const float* stored = bound_.get() + i * k_;
    const double* cum = cum_.data();
    double low = std::numeric_limits<double>::infinity();
    for (int64_t q = members_[g]; q < members_[g + 1]; ++q) {
      const double v = static_cast<double>(stored[q]) - cum[q];
      low = q == skip || q == skip_too ? low : std::min(low, v);
    }
    return low;
  }

  // One block of points; returns the distances computed.
  int64_t block(int64_t begin, int64_t end, int64_t* labels, Scratch& s) {
    s.open.clear();
    s.full.clear();
    for (int64_t i = begin; i < end; ++i) {
      if (drift_ == nullptr) {
        s.full.push_back(i);
        continue;
      }
      const double u = upper_[i] + drift_[labels[i]];
      upper_[i] = u;
      if (!clears_groups(i, u) && !clears_centroids(i, labels[i], u)) s.open.push_back(i);
    }
    int64_t computed = 0;
    if (!s.open.empty()) computed += measure_open(labels, s);
    computed += gemm(labels, s);
    return computed;
  }

  bool clears_groups(int64_t i, double u) const {
    const float* gb = group_bound_.get() + i * groups_;
    for (int64_t g = 0; g < groups_; ++g)
      if (!(u < static_cast<double>(gb[g]) - group_cum_[g])) return false;
    return true;
  }

  // Whether, in the groups that fail upper bound u, every centroid's own
  // bound clears it (point i keeps label a unmeasured). Those groups' bounds
  // are then raised to their members' smallest bound, so that the first gate
  // holds again next time.
  bool clears_centroids(int64_t i, int64_t a, double u) {
    if (!per_centroid_) return false;
    for (int64_t g = 0; g < groups_; ++g) {
      const double gl = group_lower(i, g);
      if (u < gl) continue;
      const double low = smallest_in_group(i, g, position_[a]);
      if (!(u < low)) return false;
      set_group_lower(i, g, std::max(gl, low));
    }
    return true;
  }

  // Dot products of the pairs s.pair_row (indices into `rows`) x
  // s.pair_centroid, grouped by centroid, into s.pair_d2 as squared distances.
  void measure_pairs(const std::vector<int64_t>& rows, Scratch& s) {
    const int64_t count = static_cast<int64_t>(s.pair_row.size());
    s.pair_d2.resize(count);
    if (count == 0) return;
    s.bucket.assign(k_ + 1, 0);
    for (int32_t j : s.pair_centroid) ++s.bucket[j + 1];
    for (int64_t j = 0; j < k_; ++j) s.bucket[j + 1] += s.bucket[j];
    s.order.resize(count);
    {
      std::vector<int32_t> fill(s.bucket.begin(), s.bucket.end() - 1);
      for (int64_t p = 0; p < count; ++p) s.order[fill[s.pair_centroid[p]]++] = static_cast<int32_t>(p);
    }
    s.ptrs.resize(count);
    s.dots.resize(count);
    for (int64_t j = 0; j < k_; ++j) {
      const int64_t lo = s.bucket[j], hi = s.bucket[j + 1];
      if (lo == hi) continue;
      for (int64_t q = lo; q < hi; ++q) s.ptrs[q] = px_ + rows[s.pair_row[s.order[q]]] * d_;
      const scalar_t* centroid = pc_ + j * d_;
      // The centroid as the one "row", the points as the vectors: it is read once.
      small_dots(&centroid, 1, s.ptrs.data() + lo, hi - lo, d_, s.dots.data() + lo, hi - lo);
    }
    for (int64_t q = 0; q < count; ++q) {
      const int64_t p = s.order[q];
      s.pair_d2[p] = expanded(rows[s.pair_row[p]], s.pair_centroid[p], static_cast<double>(s.dots[q]));
    }
  }

  int64_t measure_open(int64_t* labels, Scratch& s) {
    const int64_t m = static_cast<int64_t>(s.open.size());
    // 1. Each open point's distance to its own centroid: a tight upper bound.
    s.pair_row.resize(m);
    s.pair_centroid.resize(m);
    for (int64_t r = 0; r < m; ++r) {
      s.pair_row[r] = static_cast<int32_t>(r);
      s.pair_centroid[r] = static_cast<int32_t>(labels[s.open[r]]);
    }
    measure_pairs(s.open, s);
    int64_t computed = m;
    s.own.assign(s.pair_d2.begin(), s.pair_d2.end());
    s.upper.resize(m);
    // 2. The centroids whose bounds still fail against it.
    s.pair_row.clear();
    s.pair_centroid.clear();
    s.row_pairs.assign(m + 1, 0);
    std::vector<int64_t> still(m, 1);
    for (int64_t r = 0; r < m; ++r) {
      const int64_t i = s.open[r], a = labels[i];
      const double u = upper_of(i, a, s.own[r]);
      s.upper[r] = u;
      upper_[i] = u;
      bool any_failing = false;
      int64_t candidates = 0;
      int32_t* found = s.candidates.data();
      const float* stored = per_centroid_ ? bound_.get() + i * k_ : nullptr;
      const double* cum = cum_.data();
      const int32_t* member = member_list_.data();
      const int64_t own_position = position_[a];
      for (int64_t g = 0; g < groups_; ++g) {
        const double gl = group_lower(i, g);
        if (u < gl) continue;
        any_failing = true;
        for (int64_t q = members_[g]; q < members_[g + 1]; ++q) {
          const bool cleared = stored != nullptr && u < static_cast<double>(stored[q]) - cum[q];
          found[candidates] = member[q];
          candidates += !cleared && q != own_position;
        }
      }
      if (candidates * kScatterCost > k_) {
        s.full.push_back(i);
        still[r] = 0;
      } else if (!any_failing) {
        still[r] = 0;  // the tight bound clears every group: label stands
      } else {
        s.pair_row.insert(s.pair_row.end(), candidates, static_cast<int32_t>(r));
        s.pair_centroid.insert(s.pair_centroid.end(), found, found + candidates);
      }
      s.row_pairs[r + 1] = static_cast<int64_t>(s.pair_row.size());
    }
    measure_pairs(s.open, s);
    computed += static_cast<int64_t>(s.pair_row.size());
    // 3. New labels and bounds.
    for (int64_t r = 0; r < m; ++r) {
      if (!still[r]) continue;
      settle_open(s.open[r], s.own[r], s.upper[r], s.row_pairs[r], s.row_pairs[r + 1], labels, s);
    }
    return computed;
  }

  // Point i measured against its own centroid (`own`, squared) and the pairs
  // [lo, hi): its label is the nearest by (distance, index); bounds updated.
  void settle_open(int64_t i, double own, double u_before, int64_t lo, int64_t hi, int64_t* labels, Scratch& s) {
    const int64_t a = labels[i];
    std::pair<double, int64_t> best{own, a};
    for (int64_t p = lo; p < hi; ++p) {
      const std::pair<double, int64_t> v{s.pair_d2[p], s.pair_centroid[p]};
      s.measured[v.second] = v.first;
      if (v < best) best = v;
    }
    s.measured[a] = own;
    const int64_t b = best.second;
    labels[i] = b;
    upper_[i] = upper_of(i, b, best.first);
    if (per_centroid_)
      for (int64_t p = lo; p < hi; ++p) set_centroid_lower(i, s.pair_centroid[p], lower_of(i, s.pair_centroid[p], s.pair_d2[p]));
    if (per_centroid_ && b != a) set_centroid_lower(i, a, lower_of(i, a, own));
    // Groups that failed the bound (u_before) get a fresh minimum; the old
    // label's group, if it passed, only gains the old label.
    for (int64_t g = 0; g < groups_; ++g) {
      const double gl = group_lower(i, g);
      if (!(u_before < gl)) {
        // Per-centroid bounds were updated above for the measured centroids;
        // the others cleared u_before (or, without them, the group bound holds).
        // gl bounds every member but the old label a, whose distance is known.
        double low = per_centroid_ ? std::max(gl, smallest_in_group(i, g, position_[b], position_[a])) : gl;
        if (per_centroid_ && b != a && group_of_[a] == g) low = std::min(low, lower_of(i, a, own));
        if (!per_centroid_) {
          low = std::numeric_limits<double>::infinity();
          for (int64_t q = members_[g]; q < members_[g + 1]; ++q) {
            const int32_t j = member_list_[q];
            if (j != b) low = std::min(low, s.measured[j] >= 0.0 ? lower_of(i, j, s.measured[j]) : gl);
          }
        }
        set_group_lower(i, g, low);
      } else if (b != a && group_of_[a] == g) {
        set_group_lower(i, g, std::min(gl, lower_of(i, a, own)));
      }
    }
    for (int64_t p = lo; p < hi; ++p) s.measured[s.pair_centroid[p]] = -1.0;
    s.measured[a] = -1.0;
  }

  // Every centroid for the points in s.full: label and all bounds from scratch.
  int64_t gemm(int64_t* labels, Scratch& s) {
    const int64_t count = static_cast<int64_t>(s.full.size());
    if (count == 0) return 0;
    at::Tensor t = s.tile.narrow(0, 0, count);
    if (s.full.back() - s.full.front() == count - 1) {
      // A run of consecutive points (every block of the first call): read in place.
      dot_tile(x_.narrow(0, s.full.front(), count), *c_, t);
    } else {
      scalar_t* pg = s.gathered.template data_ptr<scalar_t>();
      for (int64_t r = 0; r < count; ++r) std::copy_n(px_ + s.full[r] * d_, d_, pg + r * d_);
      dot_tile(s.gathered.narrow(0, 0, count), *c_, t);
    }
    const scalar_t* pt = t.data_ptr<scalar_t>();
    const double slack = expansion_slack<scalar_t>();
    double* d2 = s.measured.data();  // borrowed, restored to -1 below
    s.lower.resize(k_);
    double* lower = s.lower.data();
    for (int64_t r = 0; r < count; ++r) {
      const int64_t i = s.full[r];
      const scalar_t* row = pt + r * k_;
      const double xn = x_norms_[i];
      distances_and_lower_bounds(row, xn, c_norms_, slack, k_, d2, lower);
      int64_t b = 0;
      for (int64_t j = 1; j < k_; ++j)
        if (d2[j] < d2[b]) b = j;  // ascending j: an equal value keeps the lower index
      labels[i] = b;
      upper_[i] = upper_of(i, b, d2[b]);
      if (per_centroid_) {
        float* stored = bound_.get() + i * k_;
        const double* cum = cum_.data();
        const int32_t* member = member_list_.data();
        for (int64_t q = 0; q < k_; ++q) stored[q] = float_down(lower[member[q]] + cum[q]);
      }
      lower[b] = std::numeric_limits<double>::infinity();
      for (int64_t g = 0; g < groups_; ++g) {
        double low = std::numeric_limits<double>::infinity();
        for (int64_t q = members_[g]; q < members_[g + 1]; ++q) low = std::min(low, lower[member_list_[q]]);
        set_group_lower(i, g, low);
      }
    }
    std::fill_n(d2, k_, -1.0);
    return count * k_;
  }

  const scalar_t* px_;
  const int64_t n_, d_, k_;
  const at::Tensor& x_;
  const at::Tensor x_norms_t_;
  const double* x_norms_;
  bool per_centroid_ = false;
  int64_t groups_ = 1;
  bool started_ = false;
  // Valid during assign():
  const double* c_norms_ = nullptr;
  const scalar_t* pc_ = nullptr;
  const at::Tensor* c_ = nullptr;
  const double* drift_ = nullptr;

  std::vector<int32_t> group_of_, member_list_;
  std::vector<int64_t> position_;  // (k,) each centroid's place in member_list_
  std::vector<int64_t> members_;  // (groups + 1,) offsets into member_list_
  std::vector<double> cum_, group_cum_, group_drift_;
  std::vector<double> upper_;
  std::unique_ptr<float[]> group_bound_;  // (n, groups) lazy group lower bounds
  std::unique_ptr<float[]> bound_;        // (n, k) lazy per-centroid lower bounds, when they fit
};

}  // namespace cpu
}  // namespace clue_ext
