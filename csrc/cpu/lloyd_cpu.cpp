// Weighted Lloyd iterations, their assignment step bounded
// (bounded_assign.h): only the points whose bounds cannot settle their label
// are measured. Centroids are recomputed only for clusters whose members
// changed; the others would come out bitwise the same.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/custom_class.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "../op_checks.h"
#include "../weight_quanta.h"
#include "bounded_assign.h"
#include "dense_math.h"
#include "weighted_means.h"

namespace clue_ext {
namespace {

// Memory the bounds may take: per-centroid bounds only while their (N, k)
// floats fit in as many bytes as the features, group bounds in at most that.
int64_t bound_budget(const at::Tensor& x) { return x.numel() * static_cast<int64_t>(x.element_size()); }

template <typename scalar_t>
using Lloyd = cpu::BoundedAssigner<scalar_t>;

// Distances computed by each assignment of the last CPU `lloyd` run in this
// process (a diagnostic for the benchmarks: lloyd_distance_counts()).
std::mutex log_mutex;
std::vector<int64_t> distance_log;

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
                                                                     at::Tensor c, int64_t max_iter, double tol,
                                                                     double label_tol) {
  const int64_t n = x.size(0), d = x.size(1), k = c.size(0);
  Lloyd<scalar_t> state(x, k, bound_budget(x));
  std::vector<int64_t> counts;
  at::Tensor labels = at::empty({n}, x.options().dtype(at::kLong));
  at::Tensor previous = at::full({n}, -1, x.options().dtype(at::kLong));
  at::Tensor cluster_w = at::zeros({k}, x.options().dtype(at::kDouble));
  int64_t* pl = labels.data_ptr<int64_t>();
  int64_t* pp = previous.data_ptr<int64_t>();
  std::vector<double> drift(k, 0.0);
  std::vector<char> touched(k);
  // The label rule's weights, only when it is on.
  const at::Tensor quanta = label_tol > 0.0 ? weight_quanta(w) : at::Tensor();
  const int64_t* pq = quanta.defined() ? quanta.const_data_ptr<int64_t>() : nullptr;
  const int64_t total_quanta = quanta.defined() ? quanta.sum().item<int64_t>() : 0;
  bool settled = false;  // labels unchanged: the centroids are their means
  bool means_current = false;  // c holds the means of `previous` (no relocation since)
  int64_t iter = 0;
  while (iter < max_iter) {
    ++iter;
    counts.push_back(state.assign(c, drift, pl));
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
    if (label_tol > 0.0) {
      int64_t changed = 0;
      for (int64_t i = 0; i < n; ++i) changed += pl[i] != pp[i] ? pq[i] : 0;
      if (few_labels_changed(changed, total_quanta, label_tol)) break;
    }
    previous.copy_(labels);
  }
  if (!settled) counts.push_back(state.assign(c, drift, pl));  // the labels must describe the final centroids
  {
    std::lock_guard<std::mutex> lock(log_mutex);
    distance_log = std::move(counts);
  }
  at::Tensor sq = at::empty({n}, x.options());
  state.exact_sq_dists(c, pl, sq.data_ptr<scalar_t>());
  return {c, labels, sq, at::scalar_tensor(iter, x.options().dtype(at::kLong))};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lloyd_cpu(const at::Tensor& x_in, const at::Tensor& w_in,
                                                                     const at::Tensor& c_in, int64_t max_iter,
                                                                     double tol, double label_tol) {
  check_lloyd_args(x_in, w_in, c_in, max_iter, tol, label_tol);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor w = w_in.contiguous();
  const at::Tensor c = c_in.contiguous().clone();
  std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lloyd_cpu",
                             [&] { out = run_lloyd<scalar_t>(x, w, c, max_iter, tol, label_tol); });
  return out;
}

// The assignment step of the CPU Lloyd loop, with its per-point bounds kept
// between calls (ops.h: LloydAssigner).
class LloydAssigner : public torch::CustomClassHolder {
 public:
  LloydAssigner(const at::Tensor& x, int64_t k) : x_(x.contiguous()), k_(k) {
    check_points(x_);
    TORCH_CHECK_VALUE(x_.device().is_cpu(), "LloydAssigner runs on the CPU, got x on ", x_.device());
    TORCH_CHECK_VALUE(k >= 1, "k must be >= 1, got ", k);
    labels_ = at::zeros({x_.size(0)}, x_.options().dtype(at::kLong));
    if (x_.scalar_type() == at::kDouble) {
      double_ = std::make_unique<Lloyd<double>>(x_, k, bound_budget(x_));
    } else {
      TORCH_CHECK_VALUE(x_.scalar_type() == at::kFloat, "x must be float32 or float64, got ", x_.scalar_type());
      float_ = std::make_unique<Lloyd<float>>(x_, k, bound_budget(x_));
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
    distances_ = double_ ? double_->assign(c, drift, labels) : float_->assign(c, drift, labels);
    return labels_.clone();
  }

  int64_t distances() const { return distances_; }

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
  int64_t distances_ = 0;
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
      .def("sq_dists", &LloydAssigner::sq_dists)
      .def("distances", &LloydAssigner::distances);
  m.def("lloyd_distance_counts() -> int[]", []() -> std::vector<int64_t> {
    std::lock_guard<std::mutex> lock(log_mutex);
    return distance_log;
  });
}

} // namespace clue_ext
