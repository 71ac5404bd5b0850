/// \file
/// Thread set-up of the coroutine frame caches (the fast paths are inline in
/// include/corun/detail/frame_alloc.hpp).
#pragma once

namespace corun::detail {

/// Gives the calling thread a frame cache now. With `recycle` false the thread still counts its
/// frames but allocates each with `::operator new` (for measuring the pool against plain new).
/// Never fails: without memory to register a cache, the thread allocates with operator new.
void configure_thread_frame_cache(bool recycle) noexcept;

}  // namespace corun::detail
