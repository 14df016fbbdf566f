#pragma once

// Weighted means per cluster, shared by the centroid_update op and the
// Lloyd loop. Threads own disjoint ranges of clusters and each scans every
// label, so a cluster's sums are formed in the order of summation_order.h
// by one thread: the result does not depend on the thread count.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "../summation_order.h"

namespace clue_ext {
namespace cpu {

// new_c[k] = sum_{labels==k} w x / sum_{labels==k} w (in double); clusters of
// zero weight copy their row of old_c. cluster_w receives the sums of w.
// With `only` given, clusters whose flag is 0 are not recomputed: their row
// of old_c and their entry of cluster_w are kept (the caller knows their
// members did not change, so the sums would come out bitwise the same).
template <typename scalar_t>
void weighted_means(const at::Tensor& x, const at::Tensor& w, const int64_t* labels,
                    const at::Tensor& old_c, at::Tensor& new_c, double* cluster_w,
                    const char* only = nullptr) {
  const int64_t n = x.size(0), d = x.size(1), k = old_c.size(0);
  const scalar_t* px = x.data_ptr<scalar_t>();
  const scalar_t* pw = w.data_ptr<scalar_t>();
  const scalar_t* po = old_c.data_ptr<scalar_t>();
  scalar_t* pn = new_c.data_ptr<scalar_t>();

  at::parallel_for(0, k, 1, [&](int64_t k0, int64_t k1) {
    const int64_t span = k1 - k0;
    // Per cluster: the run being summed, and the total over its finished
    // runs. A total is allocated when the cluster's first run fills: with
    // many small clusters (N = 10k, K = 1000) few ever do, and a second
    // K x D buffer of doubles would cost a fifth of the features. A cluster
    // of one run needs no total: 0 + run is the run, bit for bit.
    std::vector<double> run(span * d, 0.0), run_mass(span, 0.0), mass(span, 0.0);
    std::vector<int64_t> run_members(span, 0);
    std::vector<std::vector<double>> finished(span);
    const auto close_run = [&](int64_t local) {
      std::vector<double>& total = finished[local];
      if (total.empty()) total.assign(d, 0.0);
      double* current = run.data() + local * d;
      for (int64_t j = 0; j < d; ++j) total[j] += current[j];
      std::fill_n(current, d, 0.0);
      mass[local] += run_mass[local];
      run_mass[local] = 0.0;
      run_members[local] = 0;
    };
    for (int64_t i = 0; i < n; ++i) {
      const int64_t l = labels[i];
      if (l < k0 || l >= k1 || (only != nullptr && !only[l])) continue;
      const int64_t local = l - k0;
      if (run_members[local] == kMeansRun) close_run(local);
      ++run_members[local];
      const double wi = static_cast<double>(pw[i]);
      if (wi == 0.0) continue;
      double* s = run.data() + local * d;
      const scalar_t* row = px + i * d;
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) s[j] += wi * static_cast<double>(row[j]);
      run_mass[local] += wi;
    }
    for (int64_t c = k0; c < k1; ++c) {
      const int64_t local = c - k0;
      scalar_t* out = pn + c * d;
      if (only != nullptr && !only[c]) {
        std::copy_n(po + c * d, d, out);
        continue;
      }
      const bool several_runs = !finished[local].empty();
      if (several_runs && run_members[local] > 0) close_run(local);
      const double* s = several_runs ? finished[local].data() : run.data() + local * d;
      const double m = several_runs ? mass[local] : run_mass[local];
      cluster_w[c] = m;
      if (m > 0.0) {
        for (int64_t j = 0; j < d; ++j) out[j] = static_cast<scalar_t>(s[j] / m);
      } else {
        for (int64_t j = 0; j < d; ++j) out[j] = po[c * d + j];
      }
    }
  });
}

} // namespace cpu
} // namespace clue_ext
