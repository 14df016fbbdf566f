#include "capture_filter.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CLUE_EXT_AVX2_FILTER 1
#endif

namespace clue_ext {
namespace cpu {
namespace {

void possible_captures_portable(int64_t m, const double* l1, const double* scale, const double* rr,
                                const double* room, const int32_t* e, const CandidateTerms& cand, char* keep) {
  for (int64_t r = 0; r < m; ++r) {
    int possible = 0;
    for (int64_t t = 0; t < cand.trials; ++t) {
      const double rest = cand.base[t] - cand.per_l1[t] * l1[r] -
                          scale[r] * (cand.per_scale[t] + cand.estimate[t] * static_cast<double>(e[r * cand.trials + t])) -
                          rr[r] * cand.root[t];
      possible |= rest < room[r];
    }
    keep[r] = static_cast<char>(possible);
  }
}

#ifdef CLUE_EXT_AVX2_FILTER

// Four candidates per vector; the padding lanes read values of the next row
// (or past the end), which the +infinity base turns into a failed test.
__attribute__((target("avx2,fma"))) void possible_captures_avx2(int64_t m, const double* l1, const double* scale,
                                                                const double* rr, const double* room,
                                                                const int32_t* e, const CandidateTerms& cand,
                                                                char* keep) {
  for (int64_t r = 0; r < m; ++r) {
    const __m256d row_l1 = _mm256_set1_pd(l1[r]), row_scale = _mm256_set1_pd(scale[r]);
    const __m256d row_rr = _mm256_set1_pd(rr[r]), row_room = _mm256_set1_pd(room[r]);
    const int32_t* row_e = e + r * cand.trials;
    int mask = 0;
    for (int64_t t = 0; t < cand.width; t += 4) {
      const __m256d est = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row_e + t)));
      __m256d rest = _mm256_fnmadd_pd(_mm256_loadu_pd(cand.per_l1 + t), row_l1, _mm256_loadu_pd(cand.base + t));
      const __m256d scaled = _mm256_fmadd_pd(_mm256_loadu_pd(cand.estimate + t), est, _mm256_loadu_pd(cand.per_scale + t));
      rest = _mm256_fnmadd_pd(row_scale, scaled, rest);
      rest = _mm256_fnmadd_pd(row_rr, _mm256_loadu_pd(cand.root + t), rest);
      mask |= _mm256_movemask_pd(_mm256_cmp_pd(rest, row_room, _CMP_LT_OQ));
    }
    keep[r] = static_cast<char>(mask != 0);
  }
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

#endif  // CLUE_EXT_AVX2_FILTER

} // namespace

void possible_captures(int64_t m, const double* l1, const double* scale, const double* rr, const double* room,
                       const int32_t* e, const CandidateTerms& cand, char* keep) {
#ifdef CLUE_EXT_AVX2_FILTER
  if (cpu_has_avx2()) {
    possible_captures_avx2(m, l1, scale, rr, room, e, cand, keep);
    return;
  }
#endif
  possible_captures_portable(m, l1, scale, rr, room, e, cand, keep);
}

} // namespace cpu
} // namespace clue_ext
