/// \file
/// ThreadSanitizer annotations for the one hand-off TSan cannot see by itself.
///
/// moodycamel::ConcurrentQueue publishes elements with relaxed stores ordered by
/// `atomic_thread_fence`, which TSan does not model, so TSan sees its slot writes and reads as
/// races. Two annotations fix that without a suppression file:
/// - `tsan_ignored_accesses` scopes every call into the queue: TSan neither records nor checks
///   the plain reads and writes made inside it (its atomics still synchronise). A suppression
///   (`__tsan_default_suppressions`) would do the same only where the program's TSan runtime
///   lets it win: clang links a static runtime whose own weak default takes precedence, and the
///   races were reported (3 of the 26 stress tests under clang 16).
/// - `tsan_release`/`tsan_acquire` state the happens-before between a task's producer and the
///   worker that dequeues it, so races on the task itself are still reported.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define CORUN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORUN_TSAN 1
#endif
#endif

#if defined(CORUN_TSAN)
extern "C" void __tsan_acquire(void* addr);  // NOLINT(bugprone-reserved-identifier)
extern "C" void __tsan_release(void* addr);  // NOLINT(bugprone-reserved-identifier)
// TSan's dynamic-annotation entry points (both g++'s libtsan and clang's runtime export them).
// NOLINTBEGIN(readability-identifier-naming): the names are TSan's
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
// NOLINTEND(readability-identifier-naming)
#endif

namespace corun::detail {

/// Before handing `object` to another thread through a channel TSan cannot see.
inline void tsan_release(void* object) noexcept {
#if defined(CORUN_TSAN)
  __tsan_release(object);
#else
  (void)object;
#endif
}

/// After receiving `object` through such a channel.
inline void tsan_acquire(void* object) noexcept {
#if defined(CORUN_TSAN)
  __tsan_acquire(object);
#else
  (void)object;
#endif
}

/// For its lifetime, TSan ignores this thread's plain memory accesses (see the file comment).
/// Only around calls into the injection queue: anything else inside would go unchecked.
class tsan_ignored_accesses {
 public:
#if defined(CORUN_TSAN)
  tsan_ignored_accesses() noexcept {
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  }
  ~tsan_ignored_accesses() {
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
  }
#else
  // User-provided, so that an unused guard is not an unused variable to the compiler.
  tsan_ignored_accesses() noexcept {}
  ~tsan_ignored_accesses() {}
#endif
  tsan_ignored_accesses(const tsan_ignored_accesses&) = delete;
  tsan_ignored_accesses& operator=(const tsan_ignored_accesses&) = delete;
};

}  // namespace corun::detail
