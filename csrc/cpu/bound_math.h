#pragma once

// One point's row of a GEMM tile turned into squared distances and lower
// bounds on the distances, for every centroid: the per-element work that
// follows each GEMM in the bounded Lloyd, vectorised where the CPU allows
// (a plain loop would not be: sqrt may set errno).

#include <cstdint>

namespace clue_ext {
namespace cpu {

// d2[j] = max(0, x_norm + c_norms[j] - 2 dots[j]);
// lower[j] = sqrt(max(0, d2[j] - slack * (x_norm + c_norms[j]))).
void distances_and_lower_bounds(const float* dots, double x_norm, const double* c_norms, double slack, int64_t k,
                                double* d2, double* lower);
void distances_and_lower_bounds(const double* dots, double x_norm, const double* c_norms, double slack, int64_t k,
                                double* d2, double* lower);

} // namespace cpu
} // namespace clue_ext
