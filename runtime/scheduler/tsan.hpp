/// \file
/// ThreadSanitizer annotations for the one hand-off TSan cannot see by itself.
///
/// moodycamel::ConcurrentQueue publishes elements with relaxed stores ordered by
/// `atomic_thread_fence`, which TSan does not model. The queue's own internals are covered by
/// the suppression at the end of runtime.cpp; the happens-before between a task's producer and the
/// worker that dequeues it is stated here explicitly, so races on the task itself are still
/// reported.
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

}  // namespace corun::detail
