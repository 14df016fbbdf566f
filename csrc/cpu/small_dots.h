#pragma once

// Inner products of a block of rows with a handful of vectors (K-Means++
// candidates, a point's few centroids). BLAS runs such skinny products far
// below its peak, so float32 has a register-blocked AVX2/FMA kernel, chosen
// at run time when the CPU has it (with F16C for half-precision rows), as
// does int8 (maddubs); everything else uses a portable loop.

#include <c10/util/Half.h>

#include <cstdint>

namespace clue_ext {
namespace cpu {

// out[r * ldo + t] = <rows[r], vecs[t]> for r < n_rows, t < n_vecs; every
// pointer addresses `d` contiguous values.
void small_dots(const float* const* rows, int64_t n_rows, const float* const* vecs, int64_t n_vecs,
                int64_t d, float* out, int64_t ldo);
// Rows stored in half precision (a compact copy of float32 points), vectors
// in float32, products accumulated in float32.
void small_dots(const c10::Half* const* rows, int64_t n_rows, const float* const* vecs, int64_t n_vecs,
                int64_t d, float* out, int64_t ldo);
// Rows and vectors quantised to int8 in [-127, 127], exact int32 sums
// (d <= 130000 keeps them from overflowing).
void small_dots(const int8_t* const* rows, int64_t n_rows, const int8_t* const* vecs, int64_t n_vecs,
                int64_t d, int32_t* out, int64_t ldo);
void small_dots(const double* const* rows, int64_t n_rows, const double* const* vecs,
                int64_t n_vecs, int64_t d, double* out, int64_t ldo);

} // namespace cpu
} // namespace clue_ext
