// Weighted centroid update (the arithmetic lives in weighted_means.h).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <vector>

#include "../op_checks.h"
#include "weighted_means.h"

namespace clue_ext {
namespace {

// Reports the first position (lowest index) whose label is out of range, as
// the CUDA kernel does, whatever the thread count.
void check_label_range(const int64_t* labels, int64_t n, int64_t k) {
  std::atomic<int64_t> first_bad{n};
  at::parallel_for(0, n, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi && i < first_bad.load(std::memory_order_relaxed); ++i) {
      if (labels[i] >= 0 && labels[i] < k) continue;
      int64_t seen = first_bad.load();
      while (i < seen && !first_bad.compare_exchange_weak(seen, i)) {
      }
      return;
    }
  });
  const int64_t i = first_bad.load();
  TORCH_CHECK_VALUE(i == n, "labels must be in [0, ", k, "), got ", (i == n ? 0 : labels[i]), " at position ", i);
}

std::tuple<at::Tensor, at::Tensor> centroid_update_cpu(const at::Tensor& x_in, const at::Tensor& w_in,
                                                       const at::Tensor& labels_in,
                                                       const at::Tensor& c_in) {
  check_update_args(x_in, w_in, labels_in, c_in);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor w = w_in.contiguous();
  const at::Tensor labels = labels_in.contiguous();
  const at::Tensor c = c_in.contiguous();
  const int64_t k = c.size(0);
  check_label_range(labels.data_ptr<int64_t>(), x.size(0), k);

  at::Tensor new_c = at::empty_like(c);
  at::Tensor cluster_w = at::empty({k}, x.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "centroid_update_cpu", [&] {
    cpu::weighted_means<scalar_t>(x, w, labels.data_ptr<int64_t>(), c, new_c,
                                     cluster_w.data_ptr<double>());
  });
  return {new_c, cluster_w};
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CPU, m) {
  m.impl("centroid_update", &centroid_update_cpu);
}

} // namespace clue_ext
