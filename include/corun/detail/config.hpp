/// \file
/// Compiler and platform switches shared by every corun header.
#pragma once

#include <cstddef>

#if defined(__GNUC__) || defined(__clang__)
#define CORUN_LIKELY(x) __builtin_expect(!!(x), 1)
#define CORUN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CORUN_NOINLINE __attribute__((noinline))
/// For the few-instruction helpers of the hot path that g++ left as calls (it weighs the size of
/// the caller, not the size of the helper).
#define CORUN_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define CORUN_LIKELY(x) (x)
#define CORUN_UNLIKELY(x) (x)
#define CORUN_NOINLINE
#define CORUN_ALWAYS_INLINE inline
#endif

namespace corun::detail {

/// Destructive-interference size on the x86-64 and AArch64 parts we run on. Hard-coded because
/// `std::hardware_destructive_interference_size` changes with -mtune and g++ warns about using it
/// in headers (its value would then be part of the ABI).
inline constexpr std::size_t cache_line = 64;

}  // namespace corun::detail
