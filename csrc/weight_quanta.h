#pragma once

// The weight of a set of points, counted exactly, for Lloyd's label_tol rule
// (ops.h: lloyd): each point weighs floor(w / max(w) * 2^20) quanta, an
// integer, so sums of quanta do not depend on their order, on the device or
// on how the points are split between processes (clue_ext/distributed sums
// the same quanta in float64, exact below 2^53, i.e. for N < 2^33).

#include <ATen/ATen.h>

#include <cstdint>

namespace clue_ext {

constexpr double kQuantaPerMaxWeight = 1048576.0;  // 2^20

// int64 (N,) quanta of each weight (all zero when every weight is zero),
// on w's device.
inline at::Tensor weight_quanta(const at::Tensor& w) {
  const at::Tensor wd = w.to(at::kDouble);
  const double largest = w.numel() > 0 ? wd.max().item<double>() : 0.0;
  if (!(largest > 0.0)) return at::zeros(w.sizes(), w.options().dtype(at::kLong));
  return at::floor(wd / largest * kQuantaPerMaxWeight).to(at::kLong);
}

// Whether `changed` quanta out of `total` fall within label_tol (never when
// the rule is off or nothing weighs).
inline bool few_labels_changed(int64_t changed, int64_t total, double label_tol) {
  return label_tol > 0.0 && total > 0 && static_cast<double>(changed) <= label_tol * static_cast<double>(total);
}

} // namespace clue_ext
