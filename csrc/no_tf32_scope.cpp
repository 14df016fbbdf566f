// NoTF32Scope (ops.h): ATen's thread-local NoTF32Guard held by an object that
// Python can open and close, so that torch's own float32 GEMMs on the select
// path run in full precision like the ops' GEMMs, without reading or writing
// torch's TF32 settings. NoTF32Guard lives in ATen's Context (libtorch_cpu),
// so this file is part of the CPU-only build too.

#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <torch/custom_class.h>
#include <torch/library.h>

#include <memory>
#include <thread>

namespace clue_ext {
namespace {

class NoTF32Scope : public torch::CustomClassHolder {
 public:
  NoTF32Scope() : guard_(std::make_unique<at::NoTF32Guard>()), owner_(std::this_thread::get_id()) {}

  NoTF32Scope(const NoTF32Scope&) = delete;
  NoTF32Scope& operator=(const NoTF32Scope&) = delete;
  NoTF32Scope(NoTF32Scope&&) = delete;
  NoTF32Scope& operator=(NoTF32Scope&&) = delete;

  // The guard's flag is thread-local: releasing it on another thread would
  // clear that thread's flag and leave the owner's set.
  void close() {
    if (!guard_) return;
    TORCH_CHECK(std::this_thread::get_id() == owner_,
                "NoTF32Scope.close() must run on the thread that opened the scope");
    guard_.reset();
  }

  // Collected on another thread without close(): the owner's flag cannot be
  // reached from here, and the guard's destructor would clear this thread's
  // flag instead. So the guard (one bool) is leaked: the owner keeps full
  // float32 GEMMs, which is safe.
  ~NoTF32Scope() override {
    if (guard_ && std::this_thread::get_id() != owner_) {
      at::NoTF32Guard* const leaked = guard_.release();
      static_cast<void>(leaked);
    }
  }

  static bool tf32_disabled() {
    return at::NoTF32Guard::should_disable_tf32();
  }

 private:
  std::unique_ptr<at::NoTF32Guard> guard_;
  const std::thread::id owner_;
};

} // namespace

TORCH_LIBRARY_FRAGMENT(clue_ext, m) {
  m.class_<NoTF32Scope>("NoTF32Scope")
      .def(torch::init<>())
      .def("close", &NoTF32Scope::close)
      .def_static("tf32_disabled", &NoTF32Scope::tf32_disabled);
}

} // namespace clue_ext
