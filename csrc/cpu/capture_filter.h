#pragma once

// The rigorous filter of greedy K-Means++ seeding: which rows may be
// captured by some candidate, judged from int8 estimates of their products.
// Vectorised with AVX2 (chosen at run time); a portable loop otherwise.

#include <cstdint>

namespace clue_ext {
namespace cpu {

// Terms of the test that depend on the candidate only, `width` entries each
// (width >= trials, a multiple of 4; entries past `trials` must make the
// test fail: base = +infinity, the others 0).
struct CandidateTerms {
  const double* base;       // (1 - 1e-12) ||t||^2
  const double* per_l1;     // coefficient of the row's L1 norm
  const double* per_scale;  // coefficient of the row's quantisation step
  const double* estimate;   // coefficient of step_row * int8 product
  const double* root;       // ||t||
  int64_t trials;
  int64_t width;
};

// keep[r] = 1 when, for some candidate t,
//   base_t - per_l1_t l1[r] - scale[r] (per_scale_t + estimate_t e[r, t]) - rr[r] root_t < room[r],
// else 0. `e` is (m, trials) row-major and readable up to 4 values past its end.
void possible_captures(int64_t m, const double* l1, const double* scale, const double* rr, const double* room,
                       const int32_t* e, const CandidateTerms& cand, char* keep);

} // namespace cpu
} // namespace clue_ext
