// CLUE selection from C++: entropy weights, greedy K-Means++ seeding, Lloyd
// iterations and the distinct nearest point of each centroid, all through the
// clue_ext ops. Exits non-zero if a result breaks the contract.

#include <ATen/ATen.h>

#include <iostream>
#include <set>

#include "ops.h"

int main() {
  at::manual_seed(0);
  const int64_t n = 2000, d = 32, classes = 10, budget = 20, trials = 4;
  const at::Tensor x = at::randn({n, d});
  const at::Tensor probs = at::softmax(at::randn({n, classes}) * 2, 1);
  const at::Tensor weights = -(probs * probs.log()).sum(1);

  const at::Tensor uniforms = at::rand({1 + (budget - 1) * trials}, at::kDouble);
  const at::Tensor seeds = x.index_select(0, clue_ext::kmeanspp_seed(x, weights, budget, uniforms, trials));
  // tol is absolute here: scikit-learn's 1e-4 times the mean feature variance.
  const double tol = 1e-4 * x.var(0, /*unbiased=*/false).mean().item<double>();
  auto [centroids, labels, sq_dists, n_iter] = clue_ext::lloyd(x, weights, seeds, 300, tol);
  const at::Tensor picks = clue_ext::nearest_points(x, centroids);

  std::set<int64_t> distinct;
  for (int64_t j = 0; j < budget; ++j) distinct.insert(picks[j].item<int64_t>());
  std::cout << "Lloyd converged in " << n_iter.item<int64_t>() << " iterations; picked " << distinct.size()
            << " distinct points:";
  for (int64_t i : distinct) std::cout << ' ' << i;
  std::cout << "\nbuild: " << clue_ext::build_info() << '\n';
  return static_cast<int64_t>(distinct.size()) == budget ? 0 : 1;
}
