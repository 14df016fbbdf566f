#pragma once

// The order in which the centroid update sums the members of a cluster,
// shared by the CPU and CUDA backends (see centroid_update in ops.h).
//
// A cluster's members, in point order, form runs of kMeansRun consecutive
// members; each run is summed sequentially in double (multiply, then add),
// and the runs' sums are then added in run order. The order depends on the
// labels alone, never on the thread count or thread timing, and the runs let
// the GPU sum one large cluster with many threads.

#include <cstdint>

namespace clue_ext {

constexpr int64_t kMeansRun = 256;

} // namespace clue_ext
