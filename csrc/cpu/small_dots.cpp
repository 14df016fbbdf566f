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

template <typename R, typename V, typename Acc>
void dots_portable(const R* const* rows, int64_t n_rows, const V* const* vecs, int64_t n_vecs,
                   int64_t d, Acc* out, int64_t ldo) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const R* a = rows[r];
    for (int64_t t = 0; t < n_vecs; ++t) {
      const V* b = vecs[t];
      Acc s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < d; ++i) s += static_cast<Acc>(a[i]) * static_cast<Acc>(b[i]);
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

CLUE_EXT_AVX2 inline int32_t horizontal_sum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// int8 row against C int8 vectors: |a| (unsigned) times b carrying a's sign
// gives a * b in 16-bit pairs (at most 2 * 127 * 127, no saturation), summed
// into 32-bit lanes: 32 products per vector instruction instead of 8.
template <int C>
CLUE_EXT_AVX2 void row_block(const int8_t* row, const int8_t* const* vecs, int64_t d, int32_t* out) {
  __m256i acc[C];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t d32 = d & ~int64_t(31);
  for (int64_t i = 0; i < d32; i += 32) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + i));
    const __m256i magnitude = _mm256_abs_epi8(a);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m256i b = _mm256_sign_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vecs[c] + i)), a);
      acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, b), ones));
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    int32_t s = horizontal_sum(acc[c]);
    for (int64_t i = d32; i < d; ++i) s += static_cast<int32_t>(row[i]) * static_cast<int32_t>(vecs[c][i]);
    out[c] = s;
  }
}

// Every row against C vectors (row_block's overload for the types).
template <int C, typename R, typename V, typename Out>
CLUE_EXT_AVX2 void rows_against(const R* const* rows, int64_t n_rows, const V* const* vecs, int64_t d, Out* out,
                                int64_t ldo) {
  for (int64_t r = 0; r < std::min(kPrefetchAhead, n_rows); ++r) prefetch_row(rows[r], d);
  for (int64_t r = 0; r < n_rows; ++r) {
    if (r + kPrefetchAhead < n_rows) prefetch_row(rows[r + kPrefetchAhead], d);
    row_block<C>(rows[r], vecs, d, out + r * ldo);
  }
}

template <typename R, typename V, typename Out>
CLUE_EXT_AVX2 void dots_avx2(const R* const* rows, int64_t n_rows, const V* const* vecs, int64_t n_vecs,
                             int64_t d, Out* out, int64_t ldo) {
  // More than kMaxWidth vectors run in even groups (13 as 7 + 6).
  const int64_t groups = (n_vecs + kMaxWidth - 1) / kMaxWidth;
  const int64_t width = (n_vecs + groups - 1) / groups;
  for (int64_t t = 0; t < n_vecs; t += width) {
    const V* const* v = vecs + t;
    Out* o = out + t;
    switch (std::min(width, n_vecs - t)) {
      case 1: rows_against<1>(rows, n_rows, v, d, o, ldo); break;
      case 2: rows_against<2>(rows, n_rows, v, d, o, ldo); break;
      case 3: rows_against<3>(rows, n_rows, v, d, o, ldo); break;
      case 4: rows_against<4>(rows, n_rows, v, d, o, ldo); break;
      case 5: rows_against<5>(rows, n_rows, v, d, o, ldo); break;
      case 6: rows_against<6>(rows, n_rows, v, d, o, ldo); break;
      case 7: rows_against<7>(rows, n_rows, v, d, o, ldo); break;
      case 8: rows_against<8>(rows, n_rows, v, d, o, ldo); break;
      case 9: rows_against<9>(rows, n_rows, v, d, o, ldo); break;
      case 10: rows_against<10>(rows, n_rows, v, d, o, ldo); break;
      case 11: rows_against<11>(rows, n_rows, v, d, o, ldo); break;
      default: rows_against<12>(rows, n_rows, v, d, o, ldo); break;
    }
  }
}

bool cpu_has_avx2() {
  static const bool has =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return has;
}

#endif  // CLUE_EXT_AVX2_KERNEL

// The AVX2 kernel where the CPU has it, the portable loop otherwise.
template <typename R, typename V, typename Out>
void dots_fastest(const R* const* rows, int64_t n_rows, const V* const* vecs, int64_t n_vecs, int64_t d,
                  Out* out, int64_t ldo) {
#ifdef CLUE_EXT_AVX2_KERNEL
  if (cpu_has_avx2()) {
    dots_avx2(rows, n_rows, vecs, n_vecs, d, out, ldo);
    return;
  }
#endif
  dots_portable(rows, n_rows, vecs, n_vecs, d, out, ldo);
}

} // namespace

void small_dots(const float* const* rows, int64_t n_rows, const float* const* vecs, int64_t n_vecs,
                int64_t d, float* out, int64_t ldo) {
  dots_fastest(rows, n_rows, vecs, n_vecs, d, out, ldo);
}

void small_dots(const c10::Half* const* rows, int64_t n_rows, const float* const* vecs, int64_t n_vecs,
                int64_t d, float* out, int64_t ldo) {
  dots_fastest(rows, n_rows, vecs, n_vecs, d, out, ldo);
}

void small_dots(const int8_t* const* rows, int64_t n_rows, const int8_t* const* vecs, int64_t n_vecs,
                int64_t d, int32_t* out, int64_t ldo) {
  dots_fastest(rows, n_rows, vecs, n_vecs, d, out, ldo);
}

void small_dots(const double* const* rows, int64_t n_rows, const double* const* vecs,
                int64_t n_vecs, int64_t d, double* out, int64_t ldo) {
  dots_portable(rows, n_rows, vecs, n_vecs, d, out, ldo);
}

} // namespace cpu
} // namespace clue_ext
