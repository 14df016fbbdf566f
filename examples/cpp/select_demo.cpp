// CLUE selection from C++: entropy weights, greedy K-Means++ seeding, a few
// Lloyd iterations and the distinct nearest point of each centroid, all
// through the clue_ext ops. Exits non-zero if a result breaks the contract.

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
  at::Tensor centroids = x.index_select(0, clue_ext::kmeanspp_seed(x, weights, budget, uniforms, trials, std::nullopt));
  for (int iter = 0; iter < 10; ++iter) {
    auto [labels, sq_dists] = clue_ext::assign(x, centroids);
    centroids = std::get<0>(clue_ext::centroid_update(x, weights, labels, centroids));
  }
  const at::Tensor picks = clue_ext::nearest_points(x, centroids, std::nullopt);

  std::set<int64_t> distinct;
  for (int64_t j = 0; j < budget; ++j) distinct.insert(picks[j].item<int64_t>());
  std::cout << "picked " << distinct.size() << " distinct points:";
  for (int64_t i : distinct) std::cout << ' ' << i;
  std::cout << "\nbuild: " << clue_ext::build_info() << '\n';
  return static_cast<int64_t>(distinct.size()) == budget ? 0 : 1;
}
