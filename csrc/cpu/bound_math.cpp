#include "bound_math.h"

#include <algorithm>
#include <cmath>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CLUE_EXT_AVX2_BOUNDS 1
#endif

namespace clue_ext {
namespace cpu {
namespace {

template <typename T>
void portable(const T* dots, double x_norm, const double* c_norms, double slack, int64_t k, double* d2,
              double* lower, int64_t from) {
  for (int64_t j = from; j < k; ++j) {
    d2[j] = std::max(0.0, x_norm + c_norms[j] - 2.0 * static_cast<double>(dots[j]));
    lower[j] = std::sqrt(std::max(0.0, d2[j] - slack * (x_norm + c_norms[j])));
  }
}

#ifdef CLUE_EXT_AVX2_BOUNDS
__attribute__((target("avx2,fma"))) int64_t avx2(const float* dots, double x_norm, const double* c_norms,
                                                 double slack, int64_t k, double* d2, double* lower) {
  const __m256d zero = _mm256_setzero_pd(), xn = _mm256_set1_pd(x_norm), minus_two = _mm256_set1_pd(-2.0),
                s = _mm256_set1_pd(slack);
  int64_t j = 0;
  for (; j + 4 <= k; j += 4) {
    const __m256d cn = _mm256_loadu_pd(c_norms + j);
    const __m256d dot = _mm256_cvtps_pd(_mm_loadu_ps(dots + j));
    const __m256d norms = _mm256_add_pd(xn, cn);
    const __m256d v = _mm256_max_pd(zero, _mm256_fmadd_pd(minus_two, dot, norms));
    _mm256_storeu_pd(d2 + j, v);
    const __m256d low = _mm256_max_pd(zero, _mm256_sub_pd(v, _mm256_mul_pd(s, norms)));
    _mm256_storeu_pd(lower + j, _mm256_sqrt_pd(low));
  }
  return j;
}

bool has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

} // namespace

void distances_and_lower_bounds(const float* dots, double x_norm, const double* c_norms, double slack, int64_t k,
                                double* d2, double* lower) {
  int64_t from = 0;
#ifdef CLUE_EXT_AVX2_BOUNDS
  if (has_avx2()) from = avx2(dots, x_norm, c_norms, slack, k, d2, lower);
#endif
  portable(dots, x_norm, c_norms, slack, k, d2, lower, from);
}

void distances_and_lower_bounds(const double* dots, double x_norm, const double* c_norms, double slack, int64_t k,
                                double* d2, double* lower) {
  portable(dots, x_norm, c_norms, slack, k, d2, lower, 0);
}

} // namespace cpu
} // namespace clue_ext
