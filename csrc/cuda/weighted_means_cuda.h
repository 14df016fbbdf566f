#pragma once

// The arithmetic of the CUDA centroid update, without its host-side label
// check, for callers whose labels are in range by construction (the Lloyd
// loop, whose labels come from assign).

#include <ATen/ATen.h>

#include <tuple>

namespace clue_ext {
namespace cuda {

// (new centroids, cluster weights float64) for contiguous inputs on one
// device, labels in [0, K). Enqueued on the current stream; no sync.
std::tuple<at::Tensor, at::Tensor> weighted_means(const at::Tensor& x, const at::Tensor& w, const at::Tensor& labels,
                                                  const at::Tensor& c);

} // namespace cuda
} // namespace clue_ext
