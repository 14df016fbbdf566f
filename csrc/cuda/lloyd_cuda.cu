// Weighted Lloyd iterations on the GPU: the loop of the CPU op, built from
// the assign kernel and the unchecked weighted means (labels from assign are
// in range), reading every stopping flag with one host synchronisation per
// iteration. Clusters left empty are relocated as on the CPU.

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "../op_checks.h"
#include "../ops.h"
#include "../weight_quanta.h"
#include "weighted_means_cuda.h"

namespace clue_ext {
namespace {

// A cluster is empty when its weight is not positive (the CPU's rule).
at::Tensor is_empty(const at::Tensor& cluster_w) { return at::logical_not(cluster_w > 0); }

// Each cluster of zero weight moves onto a point of positive weight with the
// largest w * d^2, in cluster order; ties go to the lower point index.
at::Tensor relocate_empty(const at::Tensor& x, const at::Tensor& w, const at::Tensor& sq_dists,
                          const at::Tensor& c, const at::Tensor& cluster_w) {
  const at::Tensor empty = is_empty(cluster_w).nonzero().flatten();
  at::Tensor cost = w.to(at::kDouble) * sq_dists.to(at::kDouble);
  cost = at::where(w > 0, cost, at::full_like(cost, -1.0));
  const int64_t take = std::min<int64_t>(empty.size(0), (cost > 0).sum().item<int64_t>());
  if (take == 0) return c;
  const at::Tensor order = std::get<1>(at::sort(-cost, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  at::Tensor moved = c.clone();
  moved.index_copy_(0, empty.narrow(0, 0, take), x.index_select(0, order.narrow(0, 0, take)));
  return moved;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lloyd_cuda(const at::Tensor& x_in, const at::Tensor& w_in,
                                                                      const at::Tensor& c_in, int64_t max_iter,
                                                                      double tol, double label_tol) {
  check_lloyd_args(x_in, w_in, c_in, max_iter, tol, label_tol);
  const at::cuda::CUDAGuard guard(x_in.device());
  const at::NoTF32Guard full_float32;  // the distance GEMMs ignore torch's TF32 setting
  const at::Tensor x = x_in.contiguous();
  const at::Tensor w = w_in.contiguous();
  at::Tensor c = c_in.contiguous().clone();  // never returned as an alias of the input (max_iter == 0)
  at::Tensor labels, sq_dists, previous;
  bool settled = false;  // labels unchanged: the centroids are their means
  // The label rule's weights, only when it is on.
  const at::Tensor quanta = label_tol > 0.0 ? weight_quanta(w) : at::Tensor();
  const int64_t total_quanta = quanta.defined() ? quanta.sum().item<int64_t>() : 0;
  int64_t iter = 0;
  while (iter < max_iter) {
    ++iter;
    std::tie(labels, sq_dists) = clue_ext::assign(x, c);
    auto [next, cluster_w] = cuda::weighted_means(x, w, labels, c);
    const at::Tensor shift = (next.to(at::kDouble) - c.to(at::kDouble)).pow(2).sum();
    const at::Tensor unchanged =
        previous.defined() ? (labels == previous).all() : at::zeros({}, labels.options().dtype(at::kBool));
    const at::Tensor flags = at::stack({unchanged, shift <= tol, is_empty(cluster_w).any()}).cpu();
    const bool* f = flags.const_data_ptr<bool>();
    if (f[2]) {
      c = relocate_empty(x, w, sq_dists, next, cluster_w);
      previous = labels;
      continue;
    }
    c = next;
    if (f[0]) {
      settled = true;
      break;
    }
    if (f[1]) break;
    if (label_tol > 0.0) {
      const int64_t changed =
          previous.defined() ? (quanta * (labels != previous)).sum().item<int64_t>() : total_quanta;
      if (few_labels_changed(changed, total_quanta, label_tol)) break;
    }
    previous = labels;
  }
  if (!settled) std::tie(labels, sq_dists) = clue_ext::assign(x, c);  // labels must describe the final centroids
  return {c, labels, sq_dists, at::scalar_tensor(iter, x.options().dtype(at::kLong))};
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CUDA, m) {
  m.impl("lloyd", &lloyd_cuda);
}

} // namespace clue_ext
