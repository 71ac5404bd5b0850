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

/// The thread-locals of the hot path (the running task, the frame cache) use the local-exec TLS
/// model when the code is built for an executable (PIE or not): every access is one `%fs:`
/// instruction. With the default model of PIE code, g++ loads the variable's offset from the GOT
/// and keeps it in a callee-saved register across calls, which every coroutine body then saves
/// and restores at each resumption (callgrind, one worker: fib -3.8% and skynet -2.1% of all
/// instructions). Code built for a shared object (-fPIC without -fPIE), and any code using a
/// shared-library build of corun (`CORUN_SHARED_LIBRARY`, set by CMake), keeps the default:
/// local-exec only works for variables linked into the executable itself.
#if (defined(__GNUC__) || defined(__clang__)) && !defined(CORUN_SHARED_LIBRARY) && \
    (defined(__PIE__) || !defined(__PIC__))
#define CORUN_HOT_TLS __attribute__((tls_model("local-exec")))
#else
#define CORUN_HOT_TLS
#endif

namespace corun::detail {

/// Destructive-interference size on the x86-64 and AArch64 parts we run on. Hard-coded because
/// `std::hardware_destructive_interference_size` changes with -mtune and g++ warns about using it
/// in headers (its value would then be part of the ABI).
inline constexpr std::size_t cache_line = 64;

}  // namespace corun::detail
