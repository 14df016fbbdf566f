// Weighted greedy K-Means++ seeding.
//
// Each step draws T candidates, measures every point against all of them in
// one pass over x (rows in fixed blocks, so sums never depend on the thread
// count), keeps the candidate that lowers the weighted potential most, and
// updates the points it captures in a second, feature-free pass.
//
// A point x owned by centre o can only be captured by candidate t if
// d(o, t) < 2 d(x, o) (triangle inequality), so points that no candidate can
// capture are skipped without reading their features (Raff, IJCAI 2021).
// For float32 points the remaining ones are first measured on an int8 copy
// of x (a quarter of the memory, four times the products per instruction);
// only points that the rigorous error bound of that copy cannot rule out are
// measured again in float32. The picks are bitwise those of the unpruned
// float32 algorithm; only the work changes.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "../op_checks.h"
#include "dense_math.h"
#include "capture_filter.h"
#include "small_dots.h"

namespace clue_ext {
namespace {

constexpr int64_t kBlock = cpu::kRowChunk;
// Candidates per step that the proxy filter handles (on the stack); more, an
// unusual n_local_trials, skip the filter.
constexpr int64_t kMaxFilterTrials = 64;


// Relative slack on the pruning test, so that rounding in the expanded
// distances never skips a point that the unpruned computation would move.
template <typename scalar_t>
constexpr double prune_slack() {
  return sizeof(scalar_t) == 4 ? 1e-3 : 1e-9;
}

// The points being seeded: rows of x, or the outer products x[i] (x) f[i]
// when a factor f is given, whose inner products are <x_i,x_j> <f_i,f_j>.
template <typename scalar_t>
class SeedSpace {
 public:
  SeedSpace(const at::Tensor& x, const at::Tensor& f)
      : px_(x.data_ptr<scalar_t>()),
        pf_(f.defined() ? f.data_ptr<scalar_t>() : nullptr),
        n_(x.size(0)),
        dx_(x.size(1)),
        df_(f.defined() ? f.size(1) : 0),
        norms_(cpu::row_sq_norms(x)) {
    if (f.defined()) norms_.mul_(cpu::row_sq_norms(f));
    pn_ = norms_.data_ptr<double>();
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (!f.defined()) make_proxy(x);
    }
  }

  bool has_proxy() const { return proxy_.defined(); }

  // Estimates of <point rows[r], point cands[t]> from the int8 copy, as
  // exact int32 sums of quantised values (only with a proxy); the product is
  // about proxy_scale(row) * proxy_scale(cand) * out.
  void proxy_dots(const int64_t* rows, int64_t m, const int64_t* cands, int64_t t_count, int32_t* out,
                  std::vector<const int8_t*>& row_ptrs, std::vector<const int8_t*>& cand_ptrs) const {
    const int8_t* base = proxy_.data_ptr<int8_t>();
    row_ptrs.resize(m);
    cand_ptrs.resize(t_count);
    for (int64_t r = 0; r < m; ++r) row_ptrs[r] = base + rows[r] * dx_;
    for (int64_t t = 0; t < t_count; ++t) cand_ptrs[t] = base + cands[t] * dx_;
    cpu::small_dots(row_ptrs.data(), m, cand_ptrs.data(), t_count, dx_, out, t_count);
  }
  double proxy_scale(int64_t i) const { return scale_[i]; }
  double proxy_l1(int64_t i) const { return l1_[i]; }
  double proxy_gamma() const { return gamma_; }
  double root(int64_t i) const { return root_[i]; }
  int64_t dim() const { return dx_; }

  int64_t size() const { return n_; }
  double norm(int64_t i) const { return pn_[i]; }

  // out[r * t_count + t] = <point rows[r], point cands[t]>, in double.
  // `scratch` holds at least 2 * m * t_count values.
  void dots(const int64_t* rows, int64_t m, const int64_t* cands, int64_t t_count, double* out,
            std::vector<scalar_t>& scratch, std::vector<const scalar_t*>& ptrs) const {
    scratch.resize(2 * m * t_count);
    ptrs.resize(m + t_count);
    product_dots(px_, dx_, rows, m, cands, t_count, scratch.data(), ptrs);
    if (pf_ == nullptr) {
      for (int64_t q = 0; q < m * t_count; ++q) out[q] = static_cast<double>(scratch[q]);
      return;
    }
    scalar_t* second = scratch.data() + m * t_count;
    product_dots(pf_, df_, rows, m, cands, t_count, second, ptrs);
    for (int64_t q = 0; q < m * t_count; ++q)
      out[q] = static_cast<double>(scratch[q]) * static_cast<double>(second[q]);
  }

 private:
  static void product_dots(const scalar_t* base, int64_t d, const int64_t* rows, int64_t m,
                           const int64_t* cands, int64_t t_count, scalar_t* out,
                           std::vector<const scalar_t*>& ptrs) {
    for (int64_t r = 0; r < m; ++r) ptrs[r] = base + rows[r] * d;
    for (int64_t t = 0; t < t_count; ++t) ptrs[m + t] = base + cands[t] * d;
    cpu::small_dots(ptrs.data(), m, ptrs.data() + m, t_count, d, out, t_count);
  }

  // Each row quantised to int8 in [-127, 127] with its own scale
  // max|x_i| / 127 (products of two such values sum without saturating in
  // the int8 kernel), plus each row's L1 norm for the error bound.
  void make_proxy(const at::Tensor& x) {
    constexpr int64_t kMaxProxyDim = 130000;  // int32 sums of 127 * 127 terms
    if (dx_ > kMaxProxyDim) return;
    proxy_ = at::empty(x.sizes(), x.options().dtype(at::kChar));
    scale_.assign(n_, 0.0);
    l1_.assign(n_, 0.0);
    root_.assign(n_, 0.0);
    int8_t* pq = proxy_.data_ptr<int8_t>();
    at::parallel_for(0, n_, 256, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const scalar_t* row = px_ + i * dx_;
        double max_abs = 0.0, l1 = 0.0;
        for (int64_t j = 0; j < dx_; ++j) {
          const double v = std::abs(static_cast<double>(row[j]));
          max_abs = std::max(max_abs, v);
          l1 += v;
        }
        const double s = max_abs / 127.0, inverse = s > 0.0 ? 1.0 / s : 0.0;
        scale_[i] = s;
        l1_[i] = l1;
        root_[i] = std::sqrt(pn_[i]);
        int8_t* q = pq + i * dx_;
        // |x - s q| <= s / 2 up to the rounding of x * (1 / s): the bound's
        // (1 + 1e-9) covers it. |q| <= 127 since |x| <= max_abs.
        for (int64_t j = 0; j < dx_; ++j)
          q[j] = static_cast<int8_t>(std::nearbyint(static_cast<double>(row[j]) * inverse));
      }
    });
    const double u = std::ldexp(1.0, -24);
    const double n = static_cast<double>(dx_ + 3);
    gamma_ = n * u / (1.0 - n * u);
  }

  const scalar_t* px_;
  const scalar_t* pf_;
  int64_t n_, dx_, df_;
  at::Tensor norms_;
  const double* pn_;
  at::Tensor proxy_;
  std::vector<double> scale_, l1_, root_;  // per row: quantisation step, L1 and L2 norms
  double gamma_ = 0.0;
};

// Per-row inputs of the capture filter, reused across blocks.
struct FilterScratch {
  std::vector<double> l1, scale, rr, room;
  std::vector<char> keep;
  void resize(int64_t m) {
    l1.resize(m);
    scale.resize(m);
    rr.resize(m);
    room.resize(m);
    keep.resize(m);
  }
};

template <typename scalar_t>
class GreedySeeder {
 public:
  GreedySeeder(const SeedSpace<scalar_t>& space, const scalar_t* weights, int64_t k, int64_t trials)
      : space_(space),
        w_(weights),
        n_(space.size()),
        k_(k),
        trials_(trials),
        n_blocks_((n_ + kBlock - 1) / kBlock),
        d2_(n_, 0.0),
        owner_(n_, 0),
        chosen_(n_, 0),
        active_(n_, 0),
        cand_d2_(n_ * trials, 0.0),
        block_mass_(n_blocks_, 0.0),
        block_gain_(n_blocks_ * trials, 0.0),
        threshold_(k, 0.0) {}

  void run(const double* uniforms, int64_t* out) {
    const int64_t first = draw_first(uniforms[0]);
    out[0] = first;
    place_first(first);
    std::vector<int64_t> cands(trials_);
    for (int64_t j = 1; j < k_; ++j) {
      const double total = prefix_of_blocks();
      for (int64_t t = 0; t < trials_; ++t) {
        const double u = uniforms[1 + (j - 1) * trials_ + t];
        cands[t] = total > 0.0 ? draw_by_mass(u * total) : draw_unchosen(u);
      }
      set_thresholds(j, cands);
      measure_candidates(cands);
      const int64_t best = best_candidate();
      capture(j, cands[best], best);
      centres_.push_back(cands[best]);
      out[j] = cands[best];
    }
  }

 private:
  double mass(int64_t i) const { return static_cast<double>(w_[i]) * d2_[i]; }

  // --- sampling ---------------------------------------------------------------

  int64_t draw_first(double u) {
    double total = 0.0;
    for (int64_t i = 0; i < n_; ++i) total += static_cast<double>(w_[i]);
    if (!(total > 0.0)) return std::min(n_ - 1, static_cast<int64_t>(u * static_cast<double>(n_)));
    const double target = u * total;
    double run = 0.0;
    for (int64_t i = 0; i < n_; ++i) {
      run += static_cast<double>(w_[i]);
      if (run > target) return i;
    }
    return last_with([&](int64_t i) { return w_[i] > 0; });
  }

  template <typename Pred>
  int64_t last_with(Pred has_mass) const {
    for (int64_t i = n_ - 1; i > 0; --i)
      if (has_mass(i)) return i;
    return 0;
  }

  // Turns block_mass_ into exclusive prefix sums; returns the total.
  double prefix_of_blocks() {
    block_start_.resize(n_blocks_);
    double total = 0.0;
    for (int64_t b = 0; b < n_blocks_; ++b) {
      block_start_[b] = total;
      total += block_mass_[b];
    }
    return total;
  }

  // The first index whose running mass exceeds target. It has positive mass,
  // so it is never a chosen point.
  int64_t draw_by_mass(double target) const {
    int64_t b = std::upper_bound(block_start_.begin(), block_start_.end(), target) - block_start_.begin() - 1;
    for (b = std::max<int64_t>(b, 0); b < n_blocks_; ++b) {
      double run = block_start_[b];
      const int64_t end = std::min(n_, (b + 1) * kBlock);
      for (int64_t i = b * kBlock; i < end; ++i) {
        const double m = mass(i);
        run += m;
        // Block starts and running sums round differently: a block may
        // open already past the target, and its first points carry no mass.
        if (m > 0.0 && run > target) return i;
      }
    }
    // target rounded up to the total: the last point with mass.
    return last_with([&](int64_t i) { return mass(i) > 0.0; });
  }

  // No mass left: uniform among the points not chosen, preferring those of
  // positive weight.
  int64_t draw_unchosen(double u) const {
    int64_t positive = 0, free = 0;
    for (int64_t i = 0; i < n_; ++i) {
      if (chosen_[i]) continue;
      ++free;
      positive += w_[i] > 0;
    }
    TORCH_INTERNAL_ASSERT(free > 0, "kmeanspp_seed ran out of points");
    const bool only_positive = positive > 0;
    const int64_t pool = only_positive ? positive : free;
    int64_t r = std::min(pool - 1, static_cast<int64_t>(u * static_cast<double>(pool)));
    for (int64_t i = 0; i < n_; ++i) {
      if (chosen_[i] || (only_positive && !(w_[i] > 0))) continue;
      if (r-- == 0) return i;
    }
    TORCH_INTERNAL_ASSERT(false, "unreachable");
    return -1;
  }

  // --- one greedy step ----------------------------------------------------------

  // threshold_[c]: a point owned by centre c can be captured by some
  // candidate only if its D^2 exceeds it.
  void set_thresholds(int64_t j, const std::vector<int64_t>& cands) {
    std::vector<double> dots(j * trials_);
    std::vector<scalar_t> scratch;
    std::vector<const scalar_t*> ptrs;
    space_.dots(centres_.data(), j, cands.data(), trials_, dots.data(), scratch, ptrs);
    const double shrink = 2.0 * (1.0 + prune_slack<scalar_t>());
    for (int64_t c = 0; c < j; ++c) {
      double nearest = std::numeric_limits<double>::infinity();
      for (int64_t t = 0; t < trials_; ++t) {
        const double v = space_.norm(centres_[c]) + space_.norm(cands[t]) - 2.0 * dots[c * trials_ + t];
        nearest = std::min(nearest, v);
      }
      const double half = std::sqrt(std::max(0.0, nearest)) / shrink;
      threshold_[c] = half * half;
    }
  }

  // Distances of every point that may be captured to every candidate, and
  // per block the potential each candidate would remove.
  void measure_candidates(const std::vector<int64_t>& cands) {
    cpu::for_blocks_dynamically(n_blocks_, [&](const auto& next) {
      std::vector<int64_t> rows;
      std::vector<double> dots;
      std::vector<int32_t> estimates;
      std::vector<scalar_t> scratch;
      std::vector<const scalar_t*> ptrs;
      std::vector<const int8_t*> row_ptrs, cand_ptrs;
      FilterScratch filter;
      for (int64_t b; (b = next()) >= 0;) {
        const int64_t begin = b * kBlock, end = std::min(n_, begin + kBlock);
        rows.clear();
        for (int64_t i = begin; i < end; ++i) {
          active_[i] = 0;
          if (d2_[i] > threshold_[owner_[i]]) rows.push_back(i);
        }
        if (space_.has_proxy() && trials_ <= kMaxFilterTrials && !rows.empty()) {
          estimates.resize(rows.size() * trials_ + 4);  // the filter reads up to 4 past the end
          space_.proxy_dots(rows.data(), static_cast<int64_t>(rows.size()), cands.data(), trials_,
                            estimates.data(), row_ptrs, cand_ptrs);
          keep_possible_captures(rows, cands, estimates, filter);
        }
        double* gain = block_gain_.data() + b * trials_;
        std::fill(gain, gain + trials_, 0.0);
        if (rows.empty()) continue;
        const int64_t m = static_cast<int64_t>(rows.size());
        dots.resize(m * trials_);
        space_.dots(rows.data(), m, cands.data(), trials_, dots.data(), scratch, ptrs);
        for (int64_t r = 0; r < m; ++r) {
          const int64_t i = rows[r];
          active_[i] = 1;
          const double wi = static_cast<double>(w_[i]);
          double* cd = cand_d2_.data() + i * trials_;
          for (int64_t t = 0; t < trials_; ++t) {
            const int64_t c = cands[t];
            cd[t] = i == c ? 0.0 : std::max(0.0, space_.norm(i) + space_.norm(c) - 2.0 * dots[r * trials_ + t]);
            const double drop = d2_[i] - cd[t];
            if (drop > 0.0) gain[t] += wi * drop;
          }
        }
      }
    });
  }

  // Drops the rows that, by the proxy's error bound, no candidate brings
  // closer than their current centre: their float32 distances could not
  // change D^2 or any gain. Row i may be captured by candidate t when
  //   n_i + n_t - 2 estimate_it - 2 err_it - 1e-12 (n_i + n_t) < D^2_i,
  // where err_it bounds |estimate_it - float32 product|. With x = s q + e,
  // |e| <= s / 2 elementwise (s the row's quantisation step):
  //   quantisation  (s_t ||x_i||_1 + s_i ||x_t||_1) / 2 + 3 d s_i s_t / 4
  //   float32 sums  gamma_{d+3} ||x_i|| ||x_t||
  // The candidate's terms are folded once per block of rows.
  void keep_possible_captures(std::vector<int64_t>& rows, const std::vector<int64_t>& cands,
                              const std::vector<int32_t>& estimates, FilterScratch& scratch) const {
    const int64_t width = (trials_ + 3) / 4 * 4;
    // rest_t = (1 - 1e-12) n_t - quant s_t l1_i - s_i (quant l1_t + cross s_t + 2 s_t e_it) - 2 gamma root_i root_t
    const double quant = 1.0 + 1e-9, cross = 1.5 * space_.dim(), gamma2 = 2.0 * space_.proxy_gamma();
    double base[kMaxFilterTrials], per_l1[kMaxFilterTrials], per_scale[kMaxFilterTrials],
        estimate[kMaxFilterTrials], root[kMaxFilterTrials];
    for (int64_t t = 0; t < width; ++t) {
      const bool real = t < trials_;
      const int64_t c = real ? cands[t] : 0;
      const double s_t = space_.proxy_scale(c);
      base[t] = real ? (1.0 - 1e-12) * space_.norm(c) : std::numeric_limits<double>::infinity();
      per_l1[t] = real ? quant * s_t : 0.0;
      per_scale[t] = real ? quant * space_.proxy_l1(c) + cross * s_t : 0.0;
      estimate[t] = real ? 2.0 * s_t : 0.0;
      root[t] = real ? space_.root(c) : 0.0;
    }
    const int64_t m = static_cast<int64_t>(rows.size());
    scratch.resize(m);
    for (int64_t r = 0; r < m; ++r) {
      const int64_t i = rows[r];
      scratch.l1[r] = space_.proxy_l1(i);
      scratch.scale[r] = space_.proxy_scale(i);
      scratch.rr[r] = gamma2 * space_.root(i);
      scratch.room[r] = d2_[i] - (1.0 - 1e-12) * space_.norm(i);
    }
    const cpu::CandidateTerms terms{base, per_l1, per_scale, estimate, root, trials_, width};
    cpu::possible_captures(m, scratch.l1.data(), scratch.scale.data(), scratch.rr.data(), scratch.room.data(),
                           estimates.data(), terms, scratch.keep.data());
    size_t kept = 0;
    for (int64_t r = 0; r < m; ++r) {
      const int64_t i = rows[r];
      bool possible = scratch.keep[r];
      for (int64_t t = 0; t < trials_; ++t) possible |= i == cands[t];
      if (possible) rows[kept++] = i;
    }
    rows.resize(kept);
  }

  // Block gains summed in block order: the choice does not depend on the
  // thread count. Ties go to the earlier candidate.
  int64_t best_candidate() const {
    std::vector<double> gain(trials_, 0.0);
    for (int64_t b = 0; b < n_blocks_; ++b)
      for (int64_t t = 0; t < trials_; ++t) gain[t] += block_gain_[b * trials_ + t];
    int64_t best = 0;
    for (int64_t t = 1; t < trials_; ++t)
      if (gain[t] > gain[best]) best = t;
    return best;
  }

  // Makes point c (candidate `best`) centre j and refreshes the block masses.
  void capture(int64_t j, int64_t c, int64_t best) {
    chosen_[c] = 1;
    at::parallel_for(0, n_blocks_, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) {
        const int64_t begin = b * kBlock, end = std::min(n_, begin + kBlock);
        double block_mass = 0.0;
        for (int64_t i = begin; i < end; ++i) {
          if (i == c) {
            d2_[i] = 0.0;
            owner_[i] = j;
          } else if (active_[i]) {
            const double v = cand_d2_[i * trials_ + best];
            if (v < d2_[i]) {
              d2_[i] = v;
              owner_[i] = j;
            }
          }
          block_mass += mass(i);
        }
        block_mass_[b] = block_mass;
      }
    });
  }

  void place_first(int64_t first) {
    chosen_[first] = 1;
    centres_.push_back(first);
    at::parallel_for(0, n_blocks_, 1, [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> rows;
      std::vector<double> dots;
      std::vector<scalar_t> scratch;
      std::vector<const scalar_t*> ptrs;
      for (int64_t b = lo; b < hi; ++b) {
        const int64_t begin = b * kBlock, end = std::min(n_, begin + kBlock);
        rows.resize(end - begin);
        for (int64_t i = begin; i < end; ++i) rows[i - begin] = i;
        dots.resize(rows.size());
        space_.dots(rows.data(), end - begin, &first, 1, dots.data(), scratch, ptrs);
        double block_mass = 0.0;
        for (int64_t i = begin; i < end; ++i) {
          const double v = std::max(0.0, space_.norm(i) + space_.norm(first) - 2.0 * dots[i - begin]);
          d2_[i] = i == first ? 0.0 : v;
          owner_[i] = 0;
          block_mass += mass(i);
        }
        block_mass_[b] = block_mass;
      }
    });
  }

  const SeedSpace<scalar_t>& space_;
  const scalar_t* w_;
  const int64_t n_, k_, trials_, n_blocks_;
  std::vector<double> d2_;          // squared distance to the nearest centre
  std::vector<int64_t> owner_;      // position of that centre
  std::vector<char> chosen_;
  std::vector<char> active_;        // may be captured in the current step
  std::vector<double> cand_d2_;     // (n, trials) distances of active points
  std::vector<double> block_mass_;  // sum of w * D^2 per block
  std::vector<double> block_start_;
  std::vector<double> block_gain_;  // (blocks, trials)
  std::vector<double> threshold_;
  std::vector<int64_t> centres_;
};

at::Tensor kmeanspp_seed_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t k,
                             const at::Tensor& u_in, int64_t n_local_trials,
                             const std::optional<at::Tensor>& factor_in) {
  check_seed_args(x_in, w_in, k, u_in, n_local_trials, factor_in);
  check_weight_values(w_in);  // one pass over N here; the CUDA seeding skips it (no host synchronisation)
  const at::Tensor x = x_in.contiguous();
  const at::Tensor w = w_in.contiguous();
  const at::Tensor u = u_in.contiguous();
  const at::Tensor f = factor_in.has_value() ? factor_in->contiguous() : at::Tensor();
  at::Tensor out = at::empty({k}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeanspp_seed_cpu", [&] {
    SeedSpace<scalar_t> space(x, f);
    GreedySeeder<scalar_t> seeder(space, w.data_ptr<scalar_t>(), k, n_local_trials);
    seeder.run(u.data_ptr<double>(), out.data_ptr<int64_t>());
  });
  return out;
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CPU, m) {
  m.impl("kmeanspp_seed", &kmeanspp_seed_cpu);
}

} // namespace clue_ext
