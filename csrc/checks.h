#pragma once

// Input checks shared by every backend. They raise ValueError / TypeError in
// Python (TORCH_CHECK_VALUE / TORCH_CHECK_TYPE) with a message that names the
// argument and says what was received.

#include <c10/util/Exception.h>

#define CLUE_CHECK_DIM(t, n, name)                                        \
  TORCH_CHECK_VALUE((t).dim() == (n), name " must be ", n, "-D, got ",    \
                    (t).dim(), "-D")

#define CLUE_CHECK_FLOATING(t, name)                                       \
  TORCH_CHECK_TYPE((t).scalar_type() == at::kFloat ||                     \
                       (t).scalar_type() == at::kDouble,                  \
                   name " must be float32 or float64, got ",              \
                   (t).scalar_type())

#define CLUE_CHECK_SAME_DTYPE(a, b, name_a, name_b)                        \
  TORCH_CHECK_TYPE((a).scalar_type() == (b).scalar_type(), name_b,        \
                   " must have the dtype of " name_a " (",                \
                   (a).scalar_type(), "), got ", (b).scalar_type())

#define CLUE_CHECK_SAME_DEVICE(a, b, name_a, name_b)                       \
  TORCH_CHECK_VALUE((a).device() == (b).device(), name_b,                 \
                    " must be on the device of " name_a " (", (a).device(), \
                    "), got ", (b).device())

#define CLUE_CHECK_DTYPE(t, dtype, name)                                   \
  TORCH_CHECK_TYPE((t).scalar_type() == (dtype), name " must be ", dtype, \
                   ", got ", (t).scalar_type())

#define CLUE_CHECK_ROWS(t, n, name)                                        \
  TORCH_CHECK_VALUE((t).size(0) == (n), name " must have ", n,            \
                    " rows, got ", (t).size(0))
