// Module init and the schema of every op. Backends register their kernels in
// cpu/*.cpp and cuda/*.cu; the functions below are the C++ API of ops.h and
// call through the dispatcher.

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>
#include <torch/version.h>

#include <sstream>

#include "ops.h"

#ifndef CLUE_EXT_CUDA_ARCHS
#define CLUE_EXT_CUDA_ARCHS ""
#endif
#ifndef CLUE_EXT_CUDA_VERSION
#define CLUE_EXT_CUDA_VERSION ""
#endif

namespace clue_ext {

namespace {
template <typename Sig>
c10::TypedOperatorHandle<Sig> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}
} // namespace

at::Tensor kmeanspp_seed(const at::Tensor& x, const at::Tensor& weights, int64_t k,
                         const at::Tensor& uniforms, int64_t n_local_trials,
                         const std::optional<at::Tensor>& x_factor) {
  static auto handle = op<decltype(kmeanspp_seed)>("clue_ext::kmeanspp_seed");
  return handle.call(x, weights, k, uniforms, n_local_trials, x_factor);
}

std::tuple<at::Tensor, at::Tensor> assign(const at::Tensor& x, const at::Tensor& centroids) {
  static auto handle = op<decltype(assign)>("clue_ext::assign");
  return handle.call(x, centroids);
}

std::tuple<at::Tensor, at::Tensor> centroid_update(const at::Tensor& x, const at::Tensor& weights,
                                                   const at::Tensor& labels,
                                                   const at::Tensor& centroids) {
  static auto handle = op<decltype(centroid_update)>("clue_ext::centroid_update");
  return handle.call(x, weights, labels, centroids);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lloyd(const at::Tensor& x, const at::Tensor& weights,
                                                                 const at::Tensor& centroids, int64_t max_iter,
                                                                 double tol, double label_tol) {
  static auto handle = op<decltype(lloyd)>("clue_ext::lloyd");
  return handle.call(x, weights, centroids, max_iter, tol, label_tol);
}

at::Tensor nearest_points(const at::Tensor& x, const at::Tensor& centroids,
                          const std::optional<at::Tensor>& exclude) {
  static auto handle = op<decltype(nearest_points)>("clue_ext::nearest_points");
  return handle.call(x, centroids, exclude);
}

std::string build_info() {
  std::ostringstream s;
  const std::string archs = CLUE_EXT_CUDA_ARCHS;
  s << "{\"torch_version\": \"" << TORCH_VERSION << "\", \"cuda\": " << (archs.empty() ? "false" : "true")
    << ", \"cuda_archs\": \"" << archs << "\", \"cuda_version\": \"" << CLUE_EXT_CUDA_VERSION << "\"}";
  return s.str();
}

TORCH_LIBRARY(clue_ext, m) {
  m.def("kmeanspp_seed(Tensor x, Tensor weights, int k, Tensor uniforms, int n_local_trials, "
        "Tensor? x_factor=None) -> Tensor");
  m.def("assign(Tensor x, Tensor centroids) -> (Tensor, Tensor)");
  m.def("centroid_update(Tensor x, Tensor weights, Tensor labels, Tensor centroids) -> (Tensor, Tensor)");
  m.def("lloyd(Tensor x, Tensor weights, Tensor centroids, int max_iter, float tol, float label_tol=0.0) "
        "-> (Tensor, Tensor, Tensor, Tensor)");
  m.def("nearest_points(Tensor x, Tensor centroids, Tensor? exclude=None) -> Tensor");
  m.def("build_info() -> str", &build_info);
}

} // namespace clue_ext
