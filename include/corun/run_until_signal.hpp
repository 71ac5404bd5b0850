/// \file
/// `run_until_signal`: graceful Ctrl+C shutdown for programs. The first signal cancels the main
/// task so its async cleanup runs; a second signal, or a grace period passing, ends the process
/// the hard way (the seed's "exit with ctrl+c and await the close coroutine").
///
/// \code
///   int main() {
///     corun::runtime rt;
///     try {
///       return corun::run_until_signal(rt, serve());  // Ctrl+C: serve() sees `cancelled`
///     } catch (const corun::task_cancelled&) {
///       return 130;  // serve() let the cancellation escape after its cleanup
///     }
///   }
/// \endcode
///
/// Design. A signal handler may do almost nothing (only async-signal-safe calls), and certainly
/// not cancel a task: that allocates and takes locks. So the handler only writes the signal's
/// number to a pipe (the self-pipe trick), and a watcher thread owned by the call reads it and
/// does the rest: it cancels the task, times the grace period on the steady clock, and ends the
/// process on a second signal or when the grace period is over. Why not `sigwait` on a thread
/// with the signals blocked everywhere else: the signal mask is per thread and inherited at
/// creation, and the runtime's worker threads (and any other thread of the program) already
/// exist with the signals unblocked, so the kernel may deliver the signal to any of them; only
/// a process-wide handler sees it wherever it lands.
#pragma once

#include "corun/join_handle.hpp"
#include "corun/runtime.hpp"
#include "corun/task.hpp"

#include "corun/detail/task_node.hpp"

#include <chrono>
#include <csignal>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

namespace corun {

namespace detail {

/// The process-wide part of `run_until_signal`: starts the watcher thread and installs the
/// handlers on construction; on destruction restores the previous dispositions exactly and
/// joins the watcher (runtime/lifecycle/run_until_signal.cpp has the protocol).
///
/// THREAD SAFETY: one at a time per process (the constructor throws `std::logic_error` while
/// another exists); constructed, watched and destroyed by the same thread, while the watcher
/// thread and the signal handler run concurrently with it.
class signal_watch {
 public:
  /// Throws `std::logic_error` if another `run_until_signal` is running in the process,
  /// `std::invalid_argument` for a signal that cannot be caught (`SIGKILL`, `SIGSTOP`, not a
  /// signal number) or a negative grace, `std::system_error` if the pipe or the handlers cannot
  /// be set up. Nothing is left installed when it throws.
  signal_watch(const std::vector<int>& signals, std::chrono::nanoseconds grace);
  signal_watch(const signal_watch&) = delete;
  signal_watch& operator=(const signal_watch&) = delete;
  ~signal_watch();

  /// Names the task the first signal cancels; cancels it at once if a signal already came
  /// since construction. At most once.
  void watch(task_handle target) noexcept;

 private:
  struct state;
  std::unique_ptr<state> m_state;
};

}  // namespace detail

/// Runs `t` on `rt` as a root task and blocks the calling thread until it completes, like
/// `runtime::block_on`, while catching `signals` for a graceful shutdown:
///
///  - The **first** of these signals cancels `t` (and its children) with a `corun::cancelled`
///    whose `origin()` is `cancel_origin::signal` and whose `message()` is the signal's name
///    ("SIGINT", "SIGTERM", "SIGHUP", ...; its number, e.g. "40", for one without a standard
///    name). The task's cleanup runs as for any cancellation: catch blocks, destructors, and
///    async teardown awaited under `shield`.
///  - A **second** signal of the set, or the **grace** period (steady time, counted from the
///    first signal) passing before `t` completed, ends the process at once: the default
///    disposition of that signal (the second one, or the first when the grace ran out) is
///    restored and the signal raised again, so the exit status is "killed by SIGINT" (a shell
///    shows 130) as it would be without a handler. Nothing else runs: no destructors, no
///    `atexit`. For a signal whose default action does not end the process (`SIGWINCH`,
///    `SIGCONT`, ...), the process calls `_exit(128 + signal)` instead.
///    `grace = std::chrono::nanoseconds::max()` means no limit; zero, that the first signal
///    ends the process as if it were not caught (the cancellation has no time to run).
///
/// Returns `t`'s value or rethrows its exception, as `block_on` does, signal or not. So after
/// a signal it returns the value of a task that caught `cancelled` and returned normally, and
/// throws `corun::task_cancelled` (whose `what()` names the signal, "... was cancelled:
/// cancelled by a signal: SIGINT") when the task let the cancellation escape; the caller
/// decides the exit status then.
///
/// Signals not in `signals` are not touched. The handlers are installed before `t` starts and
/// stay until it completed; when the call returns or throws, the previous dispositions
/// (handler, flags, mask) are back exactly as they were and the watcher thread is joined.
///
/// Signal dispositions belong to the whole process, so only one call may run at a time:
/// another one, on any thread and with any runtime, throws `std::logic_error` (and so does a
/// call on a corun worker thread; `co_await` the task there). `std::invalid_argument` for a
/// signal that cannot be caught (`SIGKILL`, `SIGSTOP`) or a negative grace. When it throws
/// before starting `t`, `t` is destroyed without running.
///
/// Thread safety: callable from any thread that is not a corun worker of any runtime; the
/// signal may be delivered to any thread of the process (the runtime's workers included), so
/// it is seen as long as one thread does not block it (a signal blocked everywhere with
/// `pthread_sigmask` stays pending and is not seen).
template <class T>
T run_until_signal(runtime& rt, task<T> t, const std::vector<int>& signals = {SIGINT, SIGTERM},
                   std::chrono::nanoseconds grace = std::chrono::seconds(10)) {
  if (detail::this_thread_state().worker != nullptr) {
    throw std::logic_error(
        "corun: run_until_signal called on a corun worker thread; co_await the task instead");
  }
  detail::signal_watch watch(signals, grace);
  join_handle<T> handle = rt.spawn(std::move(t));
  watch.watch(handle);
  return handle.get();
}

}  // namespace corun
