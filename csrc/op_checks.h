#pragma once

// Argument validation of each op, shared by the CPU and CUDA backends so
// both reject the same inputs with the same messages.

#include <ATen/ATen.h>

#include <cmath>
#include <optional>

#include "checks.h"

namespace clue_ext {

inline void check_points(const at::Tensor& x) {
  CLUE_CHECK_DIM(x, 2, "x");
  CLUE_CHECK_FLOATING(x, "x");
  TORCH_CHECK_VALUE(x.size(0) >= 1, "x must hold at least one point, got 0 rows");
  TORCH_CHECK_VALUE(x.size(1) >= 1, "x must have at least one column, got 0");
}

inline void check_weights(const at::Tensor& x, const at::Tensor& weights) {
  CLUE_CHECK_DIM(weights, 1, "weights");
  CLUE_CHECK_SAME_DTYPE(x, weights, "x", "weights");
  CLUE_CHECK_SAME_DEVICE(x, weights, "x", "weights");
  CLUE_CHECK_ROWS(weights, x.size(0), "weights");
}

// Weights must be finite and >= 0: then "a cluster is empty when its weight
// is not > 0" means the same on every backend. One reduction read on the
// host (NaN propagates through min and max and fails the test), so on CUDA
// one synchronisation: the CUDA seeding, which has none, leaves the check to
// its callers (clue_ext's public functions check every weight).
inline void check_weight_values(const at::Tensor& weights) {
  const auto [low, high] = at::aminmax(weights);
  const at::Tensor range = at::stack({low, high}).to(at::kDouble).cpu();
  const double* r = range.const_data_ptr<double>();
  TORCH_CHECK_VALUE(r[0] >= 0.0 && std::isfinite(r[1]), "weights must be finite and >= 0, got values in [", r[0],
                    ", ", r[1], "]");
}

inline void check_centroids(const at::Tensor& x, const at::Tensor& centroids) {
  CLUE_CHECK_DIM(centroids, 2, "centroids");
  CLUE_CHECK_SAME_DTYPE(x, centroids, "x", "centroids");
  CLUE_CHECK_SAME_DEVICE(x, centroids, "x", "centroids");
  TORCH_CHECK_VALUE(centroids.size(0) >= 1, "centroids must hold at least one row, got 0");
  TORCH_CHECK_VALUE(centroids.size(1) == x.size(1), "centroids must have ", x.size(1),
                    " columns like x, got ", centroids.size(1));
}

inline void check_seed_args(const at::Tensor& x, const at::Tensor& weights, int64_t k,
                            const at::Tensor& uniforms, int64_t n_local_trials,
                            const std::optional<at::Tensor>& x_factor) {
  check_points(x);
  check_weights(x, weights);
  TORCH_CHECK_VALUE(k >= 1 && k <= x.size(0), "k must be in [1, ", x.size(0), "], got ", k);
  TORCH_CHECK_VALUE(n_local_trials >= 1, "n_local_trials must be >= 1, got ", n_local_trials);
  CLUE_CHECK_DIM(uniforms, 1, "uniforms");
  CLUE_CHECK_DTYPE(uniforms, at::kDouble, "uniforms");
  CLUE_CHECK_SAME_DEVICE(x, uniforms, "x", "uniforms");
  const int64_t needed = 1 + (k - 1) * n_local_trials;
  TORCH_CHECK_VALUE(uniforms.size(0) == needed, "uniforms must hold 1 + (k-1)*n_local_trials = ",
                    needed, " values, got ", uniforms.size(0));
  if (x_factor.has_value()) {
    const at::Tensor& f = *x_factor;
    CLUE_CHECK_DIM(f, 2, "x_factor");
    CLUE_CHECK_SAME_DTYPE(x, f, "x", "x_factor");
    CLUE_CHECK_SAME_DEVICE(x, f, "x", "x_factor");
    CLUE_CHECK_ROWS(f, x.size(0), "x_factor");
    TORCH_CHECK_VALUE(f.size(1) >= 1, "x_factor must have at least one column, got 0");
  }
}

inline void check_assign_args(const at::Tensor& x, const at::Tensor& centroids) {
  check_points(x);
  check_centroids(x, centroids);
}

inline void check_update_args(const at::Tensor& x, const at::Tensor& weights,
                              const at::Tensor& labels, const at::Tensor& centroids) {
  check_points(x);
  check_weights(x, weights);
  check_centroids(x, centroids);
  check_weight_values(weights);
  CLUE_CHECK_DIM(labels, 1, "labels");
  CLUE_CHECK_DTYPE(labels, at::kLong, "labels");
  CLUE_CHECK_SAME_DEVICE(x, labels, "x", "labels");
  CLUE_CHECK_ROWS(labels, x.size(0), "labels");
}

inline void check_lloyd_args(const at::Tensor& x, const at::Tensor& weights,
                             const at::Tensor& centroids, int64_t max_iter, double tol, double label_tol) {
  check_points(x);
  check_weights(x, weights);
  check_centroids(x, centroids);
  TORCH_CHECK_VALUE(centroids.size(0) <= x.size(0), "centroids must have at most ", x.size(0),
                    " rows (one per point), got ", centroids.size(0));
  TORCH_CHECK_VALUE(max_iter >= 0, "max_iter must be >= 0, got ", max_iter);
  TORCH_CHECK_VALUE(tol >= 0.0, "tol must be >= 0, got ", tol);
  TORCH_CHECK_VALUE(label_tol >= 0.0 && label_tol <= 1.0, "label_tol must be in [0, 1], got ", label_tol);
  check_weight_values(weights);
}

inline void check_nearest_args(const at::Tensor& x, const at::Tensor& centroids,
                               const std::optional<at::Tensor>& exclude) {
  check_points(x);
  check_centroids(x, centroids);
  if (exclude.has_value()) {
    CLUE_CHECK_DIM(*exclude, 1, "exclude");
    CLUE_CHECK_DTYPE(*exclude, at::kBool, "exclude");
    CLUE_CHECK_SAME_DEVICE(x, *exclude, "x", "exclude");
    CLUE_CHECK_ROWS(*exclude, x.size(0), "exclude");
  }
}

} // namespace clue_ext
