// run_until_signal (include/corun/run_until_signal.hpp): the signal handler, the watcher thread
// and the restoration of the previous dispositions.
//
// Protocol:
//  1. Claim. `g_active` admits one `signal_watch` per process: signal dispositions are
//     process-wide, so two would overwrite each other's handlers and restore them out of order.
//  2. Set-up, in this order, undone in reverse if a step fails: a non-blocking close-on-exec
//     pipe; its write end published in `g_write_fd`; the watcher thread; then the handlers, each
//     `sigaction` saving the previous disposition. The handlers come last so that a signal is
//     never caught without somebody to read it. The caller then spawns the task and hands its
//     handle to `watch`.
//  3. Handler (async-signal-safe: atomics that are lock-free, `write`, `errno`). It counts itself
//     in `g_in_handler`, loads `g_write_fd` and writes the signal's number as one byte (signals
//     are 1..64 on Linux; byte 0 means "stop"). A full pipe drops the byte: the watcher has 64 KiB
//     of unread signals to act on already.
//  4. Watcher. It polls the read end; on the first signal it cancels the task with origin
//     `signal` and the signal's name (under `m_lock`: if `watch` has not run yet, it records
//     the signal and `watch` cancels), and from then on polls with the time left of the grace
//     period on the steady clock. A second signal, or the grace running out, is the hard exit:
//     default disposition, unblock the signal in this thread, raise it; if the process is still
//     alive (a signal whose default is to ignore or to stop), `_exit(128 + signal)`.
//  5. Tear-down, when the task completed (or set-up failed): restore every previous disposition;
//     then unpublish the pipe (`g_write_fd = -1`) and wait until no handler is inside step 3, so
//     no handler still running on another thread can write to a closed (or reused) descriptor;
//     then stop the watcher (`m_stop`, and a 0 byte to wake it) and join it; close the pipe;
//     release the claim. A signal that arrives after the restoration meets the previous
//     disposition, as after the call.
#include "corun/run_until_signal.hpp"

#include "corun/cancelled.hpp"
#include "corun/join_handle.hpp"

#include "scheduler/tsan.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace corun::detail {

namespace {

// The handler touches these, so they must be lock-free to be async-signal-safe.
static_assert(std::atomic<int>::is_always_lock_free);
static_assert(std::atomic<bool>::is_always_lock_free);

/// The handlers' flags. `SA_RESTART`, so that a signal does not make blocking calls elsewhere in
/// the program fail with `EINTR`. Not under ThreadSanitizer: it runs a handler at once only when
/// the receiving thread is inside a call it intercepts, and otherwise defers it until the thread
/// is back in instrumented code; the kernel prefers the main thread, which sleeps in
/// `join_handle::get`'s raw futex syscall (as parked workers do), and `SA_RESTART` would restart
/// that syscall without returning, so the handler would never run. Without the flag the futex
/// returns `EINTR`, the waiting loop goes round, and TSan runs the handler. (A signal that lands
/// just before such a syscall, with no `EINTR` to come, is what futex.hpp's bounded sleeps under
/// TSan are for.)
#if defined(CORUN_TSAN)
constexpr int handler_flags = 0;
#else
constexpr int handler_flags = SA_RESTART;
#endif

/// Step 1: a `signal_watch` exists.
std::atomic<bool> g_active{false};
/// Step 3: the pipe's write end while a `signal_watch` exists, else -1.
std::atomic<int> g_write_fd{-1};
/// Step 3: handlers between their count-in and count-out.
std::atomic<int> g_in_handler{0};

void on_signal(int signo) {
  const int saved_errno = errno;
  // seq_cst, here and for the load below and in `unpublish_pipe`: a Dekker pair. Either this
  // count-in precedes tear-down's `g_write_fd = -1` in the single total order, and tear-down's
  // later load of the count sees us and waits; or it follows it, and our load sees -1.
  g_in_handler.fetch_add(1, std::memory_order_seq_cst);
  const int fd = g_write_fd.load(std::memory_order_seq_cst);
  if (fd >= 0) {
    const auto byte = static_cast<unsigned char>(signo);
    const ssize_t written = ::write(fd, &byte, 1);
    static_cast<void>(written);  // a full pipe drops the byte (protocol step 3)
  }
  // seq_cst (release would do): our write happens before tear-down sees the count drop and
  // closes the descriptor.
  g_in_handler.fetch_sub(1, std::memory_order_seq_cst);
  errno = saved_errno;
}

/// A signal and its abbreviation, as glibc's `sigabbrev_np` spells it (with the "SIG").
struct signal_label {
  int signo;
  const char* name;
};

#define CORUN_SIGNAL_LABEL(name) \
  signal_label { name, #name }
constexpr signal_label signal_labels[] = {
    CORUN_SIGNAL_LABEL(SIGHUP),    CORUN_SIGNAL_LABEL(SIGINT),  CORUN_SIGNAL_LABEL(SIGQUIT),
    CORUN_SIGNAL_LABEL(SIGILL),    CORUN_SIGNAL_LABEL(SIGTRAP), CORUN_SIGNAL_LABEL(SIGABRT),
    CORUN_SIGNAL_LABEL(SIGBUS),    CORUN_SIGNAL_LABEL(SIGFPE),  CORUN_SIGNAL_LABEL(SIGKILL),
    CORUN_SIGNAL_LABEL(SIGUSR1),   CORUN_SIGNAL_LABEL(SIGSEGV), CORUN_SIGNAL_LABEL(SIGUSR2),
    CORUN_SIGNAL_LABEL(SIGPIPE),   CORUN_SIGNAL_LABEL(SIGALRM), CORUN_SIGNAL_LABEL(SIGTERM),
    CORUN_SIGNAL_LABEL(SIGCHLD),   CORUN_SIGNAL_LABEL(SIGCONT), CORUN_SIGNAL_LABEL(SIGSTOP),
    CORUN_SIGNAL_LABEL(SIGTSTP),   CORUN_SIGNAL_LABEL(SIGTTIN), CORUN_SIGNAL_LABEL(SIGTTOU),
    CORUN_SIGNAL_LABEL(SIGURG),    CORUN_SIGNAL_LABEL(SIGXCPU), CORUN_SIGNAL_LABEL(SIGXFSZ),
    CORUN_SIGNAL_LABEL(SIGVTALRM), CORUN_SIGNAL_LABEL(SIGPROF), CORUN_SIGNAL_LABEL(SIGSYS),
#ifdef SIGWINCH
    CORUN_SIGNAL_LABEL(SIGWINCH),
#endif
#ifdef SIGIO
    CORUN_SIGNAL_LABEL(SIGIO),
#endif
#ifdef SIGPWR
    CORUN_SIGNAL_LABEL(SIGPWR),
#endif
#ifdef SIGSTKFLT
    CORUN_SIGNAL_LABEL(SIGSTKFLT),
#endif
};
#undef CORUN_SIGNAL_LABEL

/// "SIGINT", "SIGTERM", "SIGHUP", ...; the number for a signal without a standard name (the
/// real-time ones). Short enough for the small-string buffer: building it does not allocate.
std::string signal_name(int signo) {
  for (const signal_label& label : signal_labels) {
    if (label.signo == signo) {
      return label.name;
    }
  }
  return std::to_string(signo);
}

/// Step 4's hard exit: ends the process by `signo` as if it had not been caught.
[[noreturn]] void die_by(int signo) noexcept {
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  ::sigaction(signo, &fallback, nullptr);
  sigset_t just_this;
  sigemptyset(&just_this);
  sigaddset(&just_this, signo);
  ::pthread_sigmask(SIG_UNBLOCK, &just_this, nullptr);
  ::raise(signo);  // delivered before it returns, as the signal is unblocked in this thread
  ::_exit(128 + signo);
}

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

struct signal_watch::state {
  /// The caught signals with their previous dispositions, in installation order.
  std::vector<std::pair<int, struct sigaction>> previous;
  std::chrono::nanoseconds grace{};
  int read_fd = -1;
  int write_fd = -1;
  std::mutex lock;
  /// Guarded by `lock`: the task to cancel (step 4), and a signal that came before it was named.
  task_handle target;
  int early_signal = 0;
  /// Step 5: the watcher must return.
  std::atomic<bool> stop{false};
  std::thread watcher;

  void run() noexcept;
  void first_signal(int signo) noexcept;
  void tear_down() noexcept;
};

void signal_watch::state::first_signal(int signo) noexcept {
  const std::lock_guard<std::mutex> guard(lock);
  if (target.valid()) {
    request_cancel(target, signal_name(signo), cancel_origin::signal);
  } else {
    early_signal = signo;
  }
}

void signal_watch::state::run() noexcept {
  using clock = std::chrono::steady_clock;
  int first = 0;
  bool limited = false;
  clock::time_point deadline{};
  for (;;) {
    int timeout_ms = -1;
    if (first != 0 && limited) {
      const clock::duration left = deadline - clock::now();
      if (left <= clock::duration::zero()) {
        die_by(first);
      }
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      timeout_ms = static_cast<int>(std::min<decltype(ms)>(ms, INT_MAX));
    }
    pollfd readable{read_fd, POLLIN, 0};
    const int ready = ::poll(&readable, 1, timeout_ms);
    // seq_cst: pairs with the store in `tear_down`, made before it wrote the byte that woke us.
    if (stop.load(std::memory_order_seq_cst)) {
      return;
    }
    if (ready <= 0) {
      continue;  // EINTR, or the grace period is over (checked at the top)
    }
    unsigned char bytes[64];
    ssize_t got = 0;
    while ((got = ::read(read_fd, bytes, sizeof bytes)) > 0) {
      for (ssize_t i = 0; i < got; ++i) {
        const int signo = bytes[i];
        if (signo == 0) {
          continue;  // tear-down's wake-up; `stop` says it
        }
        if (first != 0) {
          die_by(signo);
        }
        first = signo;
        const clock::time_point now = clock::now();
        // No limit when the grace period reaches past the clock's range (`nanoseconds::max()`).
        limited = grace < clock::time_point::max() - now;
        if (limited) {
          deadline = now + std::chrono::duration_cast<clock::duration>(grace);
        }
        first_signal(signo);
      }
    }
  }
}

void signal_watch::state::tear_down() noexcept {
  for (auto it = previous.rbegin(); it != previous.rend(); ++it) {
    ::sigaction(it->first, &it->second, nullptr);
  }
  previous.clear();
  // seq_cst: the Dekker pair of `on_signal`.
  g_write_fd.store(-1, std::memory_order_seq_cst);
  while (g_in_handler.load(std::memory_order_seq_cst) != 0) {
    ::sched_yield();  // a handler on another thread is between its count-in and count-out
  }
  if (watcher.joinable()) {
    // seq_cst: the watcher's load after it woke up sees it (see `run`).
    stop.store(true, std::memory_order_seq_cst);
    const unsigned char wake = 0;
    // If the pipe is full, the watcher is not asleep: it reads and then sees `stop`.
    const ssize_t written = ::write(write_fd, &wake, 1);
    static_cast<void>(written);
    watcher.join();
  }
  ::close(read_fd);
  ::close(write_fd);
  read_fd = write_fd = -1;
  // Release: the next `signal_watch` (acquire in its claim) starts after all of the above.
  g_active.store(false, std::memory_order_release);
}

signal_watch::signal_watch(const std::vector<int>& signals, std::chrono::nanoseconds grace) {
  if (grace < std::chrono::nanoseconds::zero()) {
    throw std::invalid_argument("corun: run_until_signal with a negative grace period");
  }
  std::vector<int> unique = signals;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  for (const int signo : unique) {
    if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP) {
      throw std::invalid_argument("corun: run_until_signal cannot catch signal " +
                                  signal_name(signo));
    }
  }
  auto s = std::make_unique<state>();
  s->grace = grace;
  s->previous.reserve(unique.size());

  // Step 1. acq_rel: acquire pairs with the release in the previous owner's `tear_down`.
  bool expected = false;
  if (!g_active.compare_exchange_strong(expected, true, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
    throw std::logic_error(
        "corun: run_until_signal is already running in this process (signal handlers are "
        "process-wide, so only one call may run at a time)");
  }
  // Step 2.
  int fds[2] = {-1, -1};
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    const int error = errno;
    g_active.store(false, std::memory_order_release);  // as in `tear_down`
    throw std::system_error(error, std::generic_category(), "corun: run_until_signal: pipe2");
  }
  s->read_fd = fds[0];
  s->write_fd = fds[1];
  // seq_cst: the Dekker pair of `on_signal` (no handler of ours is installed yet, though).
  g_write_fd.store(s->write_fd, std::memory_order_seq_cst);
  try {
    s->watcher = std::thread([raw = s.get()] { raw->run(); });
    struct sigaction ours {};
    ours.sa_handler = &on_signal;
    ours.sa_flags = handler_flags;
    sigemptyset(&ours.sa_mask);
    for (const int signo : unique) {
      struct sigaction before {};
      if (::sigaction(signo, &ours, &before) != 0) {
        throw_errno("corun: run_until_signal: sigaction");
      }
      s->previous.emplace_back(signo, before);
    }
  } catch (...) {
    s->tear_down();
    throw;
  }
  m_state = std::move(s);
}

signal_watch::~signal_watch() { m_state->tear_down(); }

void signal_watch::watch(task_handle target) noexcept {
  state& s = *m_state;
  const std::lock_guard<std::mutex> guard(s.lock);
  s.target = std::move(target);
  if (s.early_signal != 0) {
    request_cancel(s.target, signal_name(s.early_signal), cancel_origin::signal);
  }
}

}  // namespace corun::detail
