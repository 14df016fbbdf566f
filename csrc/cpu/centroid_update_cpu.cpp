// Weighted centroid update. Threads own disjoint ranges of clusters and each
// scans every label, so a cluster's sums are always formed in point order by
// one thread: the result does not depend on the thread count.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <vector>

#include "../op_checks.h"

namespace clue_ext {
namespace {

void check_label_range(const int64_t* labels, int64_t n, int64_t k) {
  std::atomic<int64_t> bad{-1};
  at::parallel_for(0, n, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      if (labels[i] < 0 || labels[i] >= k) {
        bad.store(i);
        return;
      }
    }
  });
  const int64_t i = bad.load();
  TORCH_CHECK_VALUE(i < 0, "labels must be in [0, ", k, "), got ", (i < 0 ? 0 : labels[i]),
                    " at position ", i);
}

template <typename scalar_t>
void centroid_update_kernel(const at::Tensor& x, const at::Tensor& w, const int64_t* labels,
                            const at::Tensor& old_c, at::Tensor& new_c, double* cluster_w) {
  const int64_t n = x.size(0), d = x.size(1), k = old_c.size(0);
  const scalar_t* px = x.data_ptr<scalar_t>();
  const scalar_t* pw = w.data_ptr<scalar_t>();
  const scalar_t* po = old_c.data_ptr<scalar_t>();
  scalar_t* pn = new_c.data_ptr<scalar_t>();

  at::parallel_for(0, k, 1, [&](int64_t k0, int64_t k1) {
    std::vector<double> sums((k1 - k0) * d, 0.0);
    std::vector<double> mass(k1 - k0, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t l = labels[i];
      if (l < k0 || l >= k1) continue;
      const double wi = static_cast<double>(pw[i]);
      if (wi == 0.0) continue;
      double* s = sums.data() + (l - k0) * d;
      const scalar_t* row = px + i * d;
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) s[j] += wi * static_cast<double>(row[j]);
      mass[l - k0] += wi;
    }
    for (int64_t c = k0; c < k1; ++c) {
      const double m = mass[c - k0];
      cluster_w[c] = m;
      scalar_t* out = pn + c * d;
      if (m > 0.0) {
        const double* s = sums.data() + (c - k0) * d;
        for (int64_t j = 0; j < d; ++j) out[j] = static_cast<scalar_t>(s[j] / m);
      } else {
        for (int64_t j = 0; j < d; ++j) out[j] = po[c * d + j];
      }
    }
  });
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
    centroid_update_kernel<scalar_t>(x, w, labels.data_ptr<int64_t>(), c, new_c,
                                     cluster_w.data_ptr<double>());
  });
  return {new_c, cluster_w};
}

} // namespace

TORCH_LIBRARY_IMPL(clue_ext, CPU, m) {
  m.impl("centroid_update", &centroid_update_cpu);
}

} // namespace clue_ext
