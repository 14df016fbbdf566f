// Weighted greedy K-Means++ seeding with exact triangle-inequality pruning.
//
// Every point remembers its nearest centre so far (its "owner") and the
// squared distance D^2 to it; every centre keeps the list of points it owns
// and the largest D^2 among them. For a new set of candidates, a point x can
// only move to a candidate t if d(t, owner) < 2 d(x, owner) (triangle
// inequality), so whole clusters, and single points inside the rest, are
// skipped without reading their features (Raff, IJCAI 2021). The result is
// the one the unpruned algorithm gives; only the amount of work changes.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../op_checks.h"
#include "dense_math.h"

namespace clue_ext {
namespace {

// Slack on the pruning test, so that rounding in the expanded distances can
// never skip a point that the unpruned computation would move.
template <typename scalar_t>
constexpr double prune_slack() {
  return sizeof(scalar_t) == 4 ? 1e-3 : 1e-9;
}

// The points being seeded: rows of x, or rows of the outer products
// x[i] (x) f[i] when a factor f is given (never materialised).
template <typename scalar_t>
class SeedSpace {
 public:
  SeedSpace(const at::Tensor& x, const at::Tensor& f) : x_(x), f_(f) {
    norms_ = cpu::row_sq_norms(x);
    if (f.defined()) norms_.mul_(cpu::row_sq_norms(f));
  }

  const double* norms() const { return norms_.data_ptr<double>(); }
  int64_t size() const { return x_.size(0); }

  // Gathers rows `idx[0..m)` into the first m rows of `buf` (one tensor per
  // factor).
  void gather(const int64_t* idx, int64_t m, std::vector<at::Tensor>& buf) const {
    gather_one(x_, idx, m, buf[0]);
    if (f_.defined()) gather_one(f_, idx, m, buf[1]);
  }

  // out (m, t) = inner products of gathered rows with gathered candidates.
  void dots(const std::vector<at::Tensor>& rows, const std::vector<at::Tensor>& cands, int64_t m,
            at::Tensor& out, at::Tensor& scratch) const {
    at::Tensor o = out.narrow(0, 0, m);
    cpu::dot_tile(rows[0].narrow(0, 0, m), cands[0], o);
    if (f_.defined()) {
      at::Tensor s = scratch.narrow(0, 0, m);
      cpu::dot_tile(rows[1].narrow(0, 0, m), cands[1], s);
      o.mul_(s);
    }
  }

  std::vector<at::Tensor> buffers(int64_t rows) const {
    std::vector<at::Tensor> b{at::empty({rows, x_.size(1)}, x_.options())};
    if (f_.defined()) b.push_back(at::empty({rows, f_.size(1)}, f_.options()));
    return b;
  }

 private:
  static void gather_one(const at::Tensor& src, const int64_t* idx, int64_t m, at::Tensor& dst) {
    const int64_t d = src.size(1);
    const scalar_t* ps = src.data_ptr<scalar_t>();
    scalar_t* pd = dst.data_ptr<scalar_t>();
    for (int64_t r = 0; r < m; ++r) std::copy_n(ps + idx[r] * d, d, pd + r * d);
  }

  at::Tensor x_, f_, norms_;
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
        d2_(n_, 0.0),
        owner_(n_, 0),
        chosen_(n_, 0),
        members_(k),
        max_d2_(k, 0.0),
        cum_(n_),
        centres_(space.buffers(k)),
        cand_rows_(space.buffers(trials)) {}

  void run(const double* uniforms, int64_t* out) {
    const int64_t first = draw_first(uniforms[0]);
    take_first(first);
    out[0] = first;
    std::vector<int64_t> cands(trials_);
    for (int64_t j = 1; j < k_; ++j) {
      const double total = mass_prefix_sums();
      for (int64_t t = 0; t < trials_; ++t)
        cands[t] = total > 0.0 ? draw_by_mass(uniforms[1 + (j - 1) * trials_ + t], total)
                               : draw_unchosen(uniforms[1 + (j - 1) * trials_ + t]);
      const int64_t best = evaluate_candidates(j, cands);
      take(j, cands[best], best);
      out[j] = cands[best];
    }
  }

 private:
  // --- sampling -----------------------------------------------------------

  int64_t draw_first(double u) {
    double total = 0.0;
    for (int64_t i = 0; i < n_; ++i) cum_[i] = (total += static_cast<double>(w_[i]));
    if (total > 0.0) return search(u * total);
    return std::min(n_ - 1, static_cast<int64_t>(u * static_cast<double>(n_)));
  }

  double mass_prefix_sums() {
    double total = 0.0;
    for (int64_t i = 0; i < n_; ++i) cum_[i] = (total += static_cast<double>(w_[i]) * d2_[i]);
    return total;
  }

  int64_t draw_by_mass(double u, double total) { return search(u * total); }

  // The first index whose prefix sum exceeds target: it always has positive
  // mass, so it is never a chosen point.
  int64_t search(double target) {
    const auto it = std::upper_bound(cum_.begin(), cum_.end(), target);
    int64_t i = it - cum_.begin();
    if (i < n_) return i;
    // target rounded up to the total: take the last point with mass.
    for (i = n_ - 1; i > 0 && cum_[i] == cum_[i - 1]; --i) {
    }
    return i;
  }

  // No mass left: a uniform draw among the points not chosen yet,
  // preferring those with positive weight.
  int64_t draw_unchosen(double u) {
    int64_t positive = 0, free = 0;
    for (int64_t i = 0; i < n_; ++i) {
      if (chosen_[i]) continue;
      ++free;
      if (w_[i] > 0) ++positive;
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

  // --- distances ------------------------------------------------------------

  // Squared distances of the points idx[0..m) to the gathered candidates,
  // written row-major into out[0 .. m*trials).
  void candidate_distances(const int64_t* idx, int64_t m, const std::vector<int64_t>& cands,
                           const std::vector<at::Tensor>& cand_rows, double* out) const {
    const int64_t n_chunks = (m + cpu::kRowChunk - 1) / cpu::kRowChunk;
    const double* norms = space_.norms();
    const int64_t tcount = static_cast<int64_t>(cands.size());
    at::parallel_for(0, n_chunks, 1, [&](int64_t lo, int64_t hi) {
      auto rows = space_.buffers(cpu::kRowChunk);
      at::Tensor dots = at::empty({cpu::kRowChunk, tcount}, rows[0].options());
      at::Tensor scratch = at::empty_like(dots);
      for (int64_t chunk = lo; chunk < hi; ++chunk) {
        const int64_t a0 = chunk * cpu::kRowChunk;
        const int64_t mm = std::min(cpu::kRowChunk, m - a0);
        space_.gather(idx + a0, mm, rows);
        space_.dots(rows, cand_rows, mm, dots, scratch);
        const scalar_t* pd = dots.data_ptr<scalar_t>();
        for (int64_t r = 0; r < mm; ++r) {
          const int64_t i = idx[a0 + r];
          for (int64_t t = 0; t < tcount; ++t) {
            const int64_t c = cands[t];
            const double v = i == c ? 0.0
                                    : std::max(0.0, norms[i] + norms[c] -
                                                        2.0 * static_cast<double>(pd[r * tcount + t]));
            out[(a0 + r) * tcount + t] = v;
          }
        }
      }
    });
  }

  // Smallest distance from each existing centre 0..j-1 to any candidate.
  std::vector<double> centre_to_candidates(int64_t j, const std::vector<int64_t>& cands) {
    const int64_t tcount = static_cast<int64_t>(cands.size());
    at::Tensor dots = at::empty({j, tcount}, centres_[0].options());
    at::Tensor scratch = at::empty_like(dots);
    std::vector<at::Tensor> placed;
    for (const at::Tensor& c : centres_) placed.push_back(c.narrow(0, 0, j));
    space_.dots(placed, cand_rows_, j, dots, scratch);
    const scalar_t* pd = dots.data_ptr<scalar_t>();
    const double* norms = space_.norms();
    std::vector<double> nearest(j, std::numeric_limits<double>::infinity());
    for (int64_t c = 0; c < j; ++c) {
      for (int64_t t = 0; t < tcount; ++t) {
        const double v = norms[centre_index_[c]] + norms[cands[t]] - 2.0 * static_cast<double>(pd[c * tcount + t]);
        nearest[c] = std::min(nearest[c], std::sqrt(std::max(0.0, v)));
      }
    }
    return nearest;
  }

  // --- greedy step ----------------------------------------------------------

  // Collects the points that some candidate may pull away from their owner,
  // computes their distances to all candidates, and returns the position of
  // the candidate that lowers the weighted potential most.
  int64_t evaluate_candidates(int64_t j, std::vector<int64_t>& cands) {
    space_.gather(cands.data(), trials_, cand_rows_);
    const std::vector<double> nearest = centre_to_candidates(j, cands);
    active_.clear();
    for (int64_t c = 0; c < j; ++c) {
      // x can move only if nearest[c] < 2 d(x, c), i.e. d2(x) > threshold.
      const double half = nearest[c] / (2.0 * (1.0 + prune_slack<scalar_t>()));
      const double threshold = half * half;
      if (max_d2_[c] <= threshold) continue;
      for (int64_t i : members_[c])
        if (d2_[i] > threshold) active_.push_back(i);
    }
    const int64_t m = static_cast<int64_t>(active_.size());
    cand_d2_.resize(m * trials_);
    candidate_distances(active_.data(), m, cands, cand_rows_, cand_d2_.data());

    // Gains summed per fixed-size block and the blocks in order: the choice
    // does not depend on the thread count.
    const int64_t n_blocks = (m + cpu::kRowChunk - 1) / cpu::kRowChunk;
    std::vector<double> block_gain(n_blocks * trials_, 0.0);
    at::parallel_for(0, n_blocks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) {
        double* g = block_gain.data() + b * trials_;
        const int64_t a1 = std::min(m, (b + 1) * cpu::kRowChunk);
        for (int64_t a = b * cpu::kRowChunk; a < a1; ++a) {
          const int64_t i = active_[a];
          const double wi = static_cast<double>(w_[i]);
          for (int64_t t = 0; t < trials_; ++t) {
            const double drop = d2_[i] - cand_d2_[a * trials_ + t];
            if (drop > 0.0) g[t] += wi * drop;
          }
        }
      }
    });
    std::vector<double> gain(trials_, 0.0);
    for (int64_t b = 0; b < n_blocks; ++b)
      for (int64_t t = 0; t < trials_; ++t) gain[t] += block_gain[b * trials_ + t];
    int64_t best = 0;
    for (int64_t t = 1; t < trials_; ++t)
      if (gain[t] > gain[best]) best = t;
    return best;
  }

  void take_first(int64_t first) {
    const std::vector<int64_t> cands{first};
    centre_index_.push_back(first);
    space_.gather(cands.data(), 1, centres_);
    std::vector<at::Tensor> first_row;
    for (const at::Tensor& c : centres_) first_row.push_back(c.narrow(0, 0, 1));
    std::vector<int64_t> all(n_);
    for (int64_t i = 0; i < n_; ++i) all[i] = i;
    std::vector<double> dist(n_);
    candidate_distances(all.data(), n_, cands, first_row, dist.data());
    members_[0] = std::move(all);
    double mx = 0.0;
    for (int64_t i = 0; i < n_; ++i) {
      d2_[i] = dist[i];
      mx = std::max(mx, dist[i]);
    }
    chosen_[first] = 1;
    d2_[first] = 0.0;
    max_d2_[0] = mx;
  }

  // Makes candidate `best` (point `c`) centre j: moves the active points it
  // is nearest to, and refreshes the largest D^2 of every cluster touched.
  void take(int64_t j, int64_t c, int64_t best) {
    centre_index_.push_back(c);
    for (size_t f = 0; f < centres_.size(); ++f) centres_[f][j].copy_(cand_rows_[f][best]);
    std::vector<char> touched(j, 0);
    auto& mine = members_[j];
    for (size_t a = 0; a < active_.size(); ++a) {
      const int64_t i = active_[a];
      const double v = cand_d2_[a * trials_ + best];
      if (v < d2_[i] || i == c) {
        touched[owner_[i]] = 1;
        owner_[i] = j;
        d2_[i] = v;
        mine.push_back(i);
      }
    }
    if (owner_[c] != j) {  // a zero-mass pick that no candidate test reached
      touched[owner_[c]] = 1;
      owner_[c] = j;
      mine.push_back(c);
    }
    d2_[c] = 0.0;
    chosen_[c] = 1;
    double mx = 0.0;
    for (int64_t i : mine) mx = std::max(mx, d2_[i]);
    max_d2_[j] = mx;
    for (int64_t o = 0; o < j; ++o) {
      if (!touched[o]) continue;
      auto& list = members_[o];
      double omx = 0.0;
      size_t kept = 0;
      for (int64_t i : list) {
        if (owner_[i] != o) continue;
        list[kept++] = i;
        omx = std::max(omx, d2_[i]);
      }
      list.resize(kept);
      max_d2_[o] = omx;
    }
  }

  const SeedSpace<scalar_t>& space_;
  const scalar_t* w_;
  const int64_t n_, k_, trials_;
  std::vector<double> d2_;
  std::vector<int64_t> owner_;
  std::vector<char> chosen_;
  std::vector<std::vector<int64_t>> members_;
  std::vector<double> max_d2_;
  std::vector<double> cum_;
  std::vector<at::Tensor> centres_;    // gathered rows of the centres so far
  std::vector<at::Tensor> cand_rows_;  // gathered rows of the current candidates
  std::vector<int64_t> centre_index_;
  std::vector<int64_t> active_;
  std::vector<double> cand_d2_;
};

at::Tensor kmeanspp_seed_cpu(const at::Tensor& x_in, const at::Tensor& w_in, int64_t k,
                             const at::Tensor& u_in, int64_t n_local_trials,
                             const std::optional<at::Tensor>& factor_in) {
  check_seed_args(x_in, w_in, k, u_in, n_local_trials, factor_in);
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
