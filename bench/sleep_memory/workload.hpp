/// \file
/// Memory per sleeping task: how much resident memory a task suspended in a sleep holds,
/// against a thread blocked on a condition variable.
///
/// corun (`sleep_memory/corun`): the root task spawns 1,000,000 tasks that each
/// `co_await sleep_for(1h)`; once all of them are asleep the process's resident set (RSS,
/// /proc/self/statm) is read again, and the growth divided by the tasks is the counter
/// `bytes_per_task`: the coroutine frame (task state and the sleep's timer entry) and the timer
/// heap's slot. The runtime is then destroyed, which cancels every sleep. Timed (by hand): from
/// the first spawn until every task is asleep, so `ns_per_task` is ns per spawn + sleep.
///
/// Baseline `sleep_memory/threads`: 10,000 `std::thread`s, each blocked in
/// `std::condition_variable::wait`, started by `<threads>` starter threads; `bytes_per_task` is
/// the RSS growth per blocked thread (its touched stack pages, TLS and the thread descriptor;
/// what the kernel holds per thread, about 16 KiB of kernel stack and the task struct, is not
/// in RSS and not counted). If the system refuses a thread, the run keeps the ones it got and
/// reports their number as the counter `started_threads`.
///
/// RSS is read in pages, so the growth of one run is exact to a page over the whole run. Free
/// memory that the allocator kept from earlier runs would hide growth, so each run first hands
/// free heap memory back to the system (`malloc_trim`); the times therefore include faulting
/// that memory in afresh, as a process's first burst of sleepers would. What `malloc_trim`
/// cannot reach is corun's process-wide frame cache (at most 16 MiB,
/// runtime/memory/frame_pool.cpp), which a run after the first reuses: it may hide up to 17
/// bytes per task of the 1,000,000.
#pragma once

#include "common/harness.hpp"

#include <malloc.h>
#include <unistd.h>

#include <fstream>

namespace bench::sleep_memory {

/// Sleeping tasks per corun run: 1,000,000; 1,000 in smoke mode.
[[nodiscard]] inline long tasks() noexcept { return smoke() ? 1'000 : 1'000'000; }

/// Blocked threads per baseline run: 10,000; 100 in smoke mode.
[[nodiscard]] inline long blocked_threads() noexcept { return smoke() ? 100 : 10'000; }

/// The process's resident set in bytes (the second field of /proc/self/statm, in pages), or
/// -1 if it cannot be read.
[[nodiscard]] inline long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size_pages = 0;
  long resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) {
    return -1;
  }
  return resident_pages * sysconf(_SC_PAGESIZE);
}

/// Gives free heap memory back to the system, so that what a run allocates next is faulted in
/// afresh and shows in the RSS growth.
inline void release_free_memory() noexcept { static_cast<void>(malloc_trim(0)); }

}  // namespace bench::sleep_memory
