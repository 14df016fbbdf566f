#include "small_dots.h"

#include <c10/util/Half.h>

#include <algorithm>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CLUE_EXT_AVX2_KERNEL 1
#endif

namespace clue_ext {
namespace cpu {
namespace {

template <typename R, typename T>
void dots_portable(const R* const* rows, int64_t n_rows, const T* const* vecs, int64_t n_vecs,
                   int64_t d, T* out, int64_t ldo) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const R* a = rows[r];
    for (int64_t t = 0; t < n_vecs; ++t) {
      const T* b = vecs[t];
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < d; ++i) s += static_cast<T>(a[i]) * b[i];
      out[r * ldo + t] = s;
    }
  }
}

#ifdef CLUE_EXT_AVX2_KERNEL

#define CLUE_EXT_AVX2 __attribute__((target("avx2,fma,f16c")))

CLUE_EXT_AVX2 inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
CLUE_EXT_AVX2 inline __m256 load8(const c10::Half* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

CLUE_EXT_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One row against C vectors, C accumulators in registers (C + 2 <= 16). The
// row streams from memory exactly once while the vectors stay in L1; with
// C >= 4 the FMA units, not the loads, set the pace.
template <int C, typename R>
CLUE_EXT_AVX2 void row_block(const R* row, const float* const* vecs, int64_t d, float* out) {
  __m256 acc[C];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  const int64_t d8 = d & ~int64_t(7);
  for (int64_t i = 0; i < d8; i += 8) {
    const __m256 a = load8(row + i);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[c] = _mm256_fmadd_ps(a, _mm256_loadu_ps(vecs[c] + i), acc[c]);
  }
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    float s = horizontal_sum(acc[c]);
    for (int64_t i = d8; i < d; ++i) s += static_cast<float>(row[i]) * vecs[c][i];
    out[c] = s;
  }
}

constexpr int64_t kMaxWidth = 12;

// How many rows ahead to prefetch: rows come through pointers, so the
// hardware prefetcher cannot know the next one, and without this the
// arithmetic waits on memory instead of overlapping with it.
constexpr int64_t kPrefetchAhead = 2;

template <typename R>
CLUE_EXT_AVX2 inline void prefetch_row(const R* row, int64_t d) {
  constexpr int64_t per_line = 64 / sizeof(R);
  for (int64_t i = 0; i < d; i += per_line) _mm_prefetch(reinterpret_cast<const char*>(row + i), _MM_HINT_T0);
}

template <int C, typename R>
CLUE_EXT_AVX2 void rows_against(const R* const* rows, int64_t n_rows, const float* const* vecs,
                                int64_t d, float* out, int64_t ldo) {
  for (int64_t r = 0; r < std::min(kPrefetchAhead, n_rows); ++r) prefetch_row(rows[r], d);
  for (int64_t r = 0; r < n_rows; ++r) {
    if (r + kPrefetchAhead < n_rows) prefetch_row(rows[r + kPrefetchAhead], d);
    row_block<C, R>(rows[r], vecs, d, out + r * ldo);
  }
}

template <typename R>
CLUE_EXT_AVX2 void dots_avx2(const R* const* rows, int64_t n_rows, const float* const* vecs,
                             int64_t n_vecs, int64_t d, float* out, int64_t ldo) {
  // More than kMaxWidth vectors run in even groups (13 as 7 + 6).
  const int64_t groups = (n_vecs + kMaxWidth - 1) / kMaxWidth;
  const int64_t width = (n_vecs + groups - 1) / groups;
  for (int64_t t = 0; t < n_vecs; t += width) {
    const float* const* v = vecs + t;
    float* o = out + t;
    switch (std::min(width, n_vecs - t)) {
      case 1: rows_against<1, R>(rows, n_rows, v, d, o, ldo); break;
      case 2: rows_against<2, R>(rows, n_rows, v, d, o, ldo); break;
      case 3: rows_against<3, R>(rows, n_rows, v, d, o, ldo); break;
      case 4: rows_against<4, R>(rows, n_rows, v, d, o, ldo); break;
      case 5: rows_against<5, R>(rows, n_rows, v, d, o, ldo); break;
      case 6: rows_against<6, R>(rows, n_rows, v, d, o, ldo); break;
      case 7: rows_against<7, R>(rows, n_rows, v, d, o, ldo); break;
      case 8: rows_against<8, R>(rows, n_rows, v, d, o, ldo); break;
      case 9: rows_against<9, R>(rows, n_rows, v, d, o, ldo); break;
      case 10: rows_against<10, R>(rows, n_rows, v, d, o, ldo); break;
      case 11: rows_against<11, R>(rows, n_rows, v, d, o, ldo); break;
      default: rows_against<12, R>(rows, n_rows, v, d, o, ldo); break;
    }
  }
}

bool cpu_has_avx2() {
  static const bool has =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return has;
}

#endif  // CLUE_EXT_AVX2_KERNEL

} // namespace

void small_dots(const float* const* rows, int64_t n_rows, const float* const* vecs, int64_t n_vecs,
                int64_t d, float* out, int64_t ldo) {
#ifdef CLUE_EXT_AVX2_KERNEL
  if (cpu_has_avx2()) {
    dots_avx2(rows, n_rows, vecs, n_vecs, d, out, ldo);
    return;
  }
#endif
  dots_portable(rows, n_rows, vecs, n_vecs, d, out, ldo);
}

void small_dots(const c10::Half* const* rows, int64_t n_rows, const float* const* vecs, int64_t n_vecs,
                int64_t d, float* out, int64_t ldo) {
#ifdef CLUE_EXT_AVX2_KERNEL
  if (cpu_has_avx2()) {
    dots_avx2(rows, n_rows, vecs, n_vecs, d, out, ldo);
    return;
  }
#endif
  dots_portable(rows, n_rows, vecs, n_vecs, d, out, ldo);
}

void small_dots(const double* const* rows, int64_t n_rows, const double* const* vecs,
                int64_t n_vecs, int64_t d, double* out, int64_t ldo) {
  dots_portable(rows, n_rows, vecs, n_vecs, d, out, ldo);
}

} // namespace cpu
} // namespace clue_ext
