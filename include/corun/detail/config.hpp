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

/// Clang (LLVM issues 47179 and 63022; clang 16 here, not yet seen with clang 14) may compute the
/// address of a thread-local once, keep it in the coroutine frame across a suspension, and use
/// it after the coroutine resumed on another thread, where it names the first thread's variable.
/// With clang 16 -O3, 62 tests crashed or hung on it: a join's `await_resume` read the running task
/// of the worker the joiner had suspended on. So code that a coroutine body may inline (every
/// header here, and the coroutines of runtime/lifecycle) reads the hot thread-locals through
/// accessors marked `CORUN_TLS_ACCESSOR` whose body starts with `CORUN_TLS_FENCE()`: under clang, a
/// call that writes memory as far as the optimiser knows, so it can be neither merged with an
/// earlier one nor hoisted. g++ splits a coroutine into its resumption function before it
/// optimises, so a value never outlives a suspension unless the source keeps it; there the accessor
/// inlines into the single `%fs:` access it was.
#if defined(__clang__)
#define CORUN_TLS_ACCESSOR [[gnu::noinline]]
#define CORUN_TLS_FENCE() asm volatile("" ::: "memory")
#else
#define CORUN_TLS_ACCESSOR [[gnu::always_inline]]
#define CORUN_TLS_FENCE() static_cast<void>(0)
#endif

namespace corun::detail {

/// Destructive-interference size on the x86-64 and AArch64 parts we run on. Hard-coded because
/// `std::hardware_destructive_interference_size` changes with -mtune and g++ warns about using it
/// in headers (its value would then be part of the ABI).
inline constexpr std::size_t cache_line = 64;

}  // namespace corun::detail
