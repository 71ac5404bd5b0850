/// \file
/// `run_until_signal`: graceful shutdown on real signals. Each signal test forks a child
/// process that runs a runtime and `run_until_signal`, reporting its progress to the parent one
/// byte at a time through a pipe; the parent sends the signals with `kill` and checks the
/// reports and how the child ended (its exit code, or the signal that killed it). The runtime
/// exists only in the child, so nothing multithreaded is forked. Every wait of the parent is
/// bounded (a minute), after which the child is killed and the test fails: a bug cannot hang
/// CI. No timing is asserted. The cases that need no signal run in the test process itself.
#include "corun/run_until_signal.hpp"

#include "support.hpp"

#include <poll.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using corun::task;
using namespace corun_test;
using namespace std::chrono_literals;

namespace {

// ---- What a child reports, one byte each ------------------------------------------------------

constexpr char started = 'S';       ///< the task is running (the handlers are installed)
constexpr char right_cancel = 'O';  ///< the task saw `cancelled` with the expected provenance
constexpr char wrong_cancel = 'X';  ///< ... with another one
constexpr char cleaned_up = 'C';    ///< the task's shielded async cleanup ran to its end
constexpr char hanging = 'H';       ///< the task's shielded cleanup started and will never end
constexpr char restored = 'D';      ///< after the call: the dispositions are the defaults again
constexpr char not_restored = 'N';  ///< ... they are not

/// Child exit codes.
constexpr int exit_returned = 10;   ///< run_until_signal returned (plus the value, below 10)
constexpr int exit_cancelled = 20;  ///< it threw `task_cancelled` naming the expected signal
constexpr int exit_bad_what = 21;   ///< it threw `task_cancelled` without the signal's name
constexpr int exit_other = 22;      ///< it threw something else

constexpr auto parent_limit = std::chrono::seconds(60);

constexpr std::size_t sweep[] = {1, 2, 4};

void report(int fd, char what) {
  const ssize_t written = ::write(fd, &what, 1);
  static_cast<void>(written);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A signal's disposition, for comparing before and after.
struct disposition {
  void* handler = nullptr;
  int flags = 0;
  std::vector<int> mask;

  bool operator==(const disposition&) const = default;
};

disposition disposition_of(int signo) {
  struct sigaction now {};
  REQUIRE(::sigaction(signo, nullptr, &now) == 0);
  disposition d;
  d.handler = (now.sa_flags & SA_SIGINFO) != 0 ? reinterpret_cast<void*>(now.sa_sigaction)
                                               : reinterpret_cast<void*>(now.sa_handler);
  d.flags = now.sa_flags;
  for (int s = 1; s < NSIG; ++s) {
    if (sigismember(&now.sa_mask, s) == 1) {
      d.mask.push_back(s);
    }
  }
  return d;
}

/// The same without doctest's assertions, for a child.
bool is_default(int signo) {
  struct sigaction now {};
  return ::sigaction(signo, nullptr, &now) == 0 && (now.sa_flags & SA_SIGINFO) == 0 &&
         now.sa_handler == SIG_DFL;
}

void set_default(int signo) {
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  ::sigaction(signo, &fallback, nullptr);
}

/// The first line of `path` that starts with `key`, without the key; "?" if none.
std::string status_field(const std::filesystem::path& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      const std::size_t start = line.find_first_not_of(" \t", key.size());
      return start == std::string::npos ? std::string() : line.substr(start);
    }
  }
  return "?";
}

std::string first_line(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  return std::getline(in, line) ? line : "?";
}

/// Where every thread of a hung child is, for the failure message: its name, state, kernel
/// wait channel and system call, and its pending, blocked and caught signals (hex masks, bit
/// N-1 for signal N). A signal still pending in the kernel (`ShdPnd` or `SigPnd`) was never
/// delivered; one that is not was taken by a thread whose handler did not run (or ran and was
/// not acted on).
std::string describe_process(pid_t pid) {
  std::ostringstream out;
  const std::filesystem::path proc = "/proc/" + std::to_string(pid);
  out << "child " << pid << ": ShdPnd " << status_field(proc / "status", "ShdPnd:") << "\n";
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator(proc / "task", error)) {
    const std::filesystem::path& t = task.path();
    out << "  thread " << t.filename().string() << " '" << first_line(t / "comm") << "' "
        << status_field(t / "status", "State:") << ", wchan " << first_line(t / "wchan")
        << ", syscall " << first_line(t / "syscall") << ", SigPnd "
        << status_field(t / "status", "SigPnd:") << ", SigBlk "
        << status_field(t / "status", "SigBlk:") << ", SigCgt "
        << status_field(t / "status", "SigCgt:") << "\n";
  }
  if (error) {
    out << "  (no /proc entry: " << error.message() << ")\n";
  }
  return out.str();
}

/// A forked child running `body(report_fd)`, which returns the exit code. The parent reads the
/// reports and waits for the child, each wait bounded by `parent_limit`.
class child_process {
 public:
  template <class F>
  explicit child_process(F body) {
    int fds[2] = {-1, -1};
    REQUIRE(::pipe(fds) == 0);
    std::fflush(nullptr);  // or the child may write the parent's buffered output a second time
    m_pid = ::fork();
    REQUIRE(m_pid >= 0);
    if (m_pid == 0) {
      ::close(fds[0]);
      std::set_terminate([] { ::_exit(4); });
      // doctest catches these for its crash report; the child starts from the defaults.
      for (const int signo : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) {
        set_default(signo);
      }
      int code = 3;
      try {
        code = body(fds[1]);
      } catch (...) {
        code = 3;
      }
      ::_exit(code);
    }
    ::close(fds[1]);
    m_fd = fds[0];
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      int status = 0;
      ::waitpid(m_pid, &status, 0);
    }
    ::close(m_fd);
  }

  /// Reads reports until `what` came (true), or the pipe closed or the time ran out (false).
  bool wait_for(char what) {
    const auto give_up = std::chrono::steady_clock::now() + parent_limit;
    while (m_seen.find(what) == std::string::npos) {
      if (!read_some(give_up)) {
        return false;
      }
    }
    return true;
  }

  void send(int signo) const { REQUIRE(::kill(m_pid, signo) == 0); }

  /// Reads the remaining reports and reaps the child; its wait status. Kills the child and
  /// fails the test if it does not end in time.
  int wait_exit() {
    const auto give_up = std::chrono::steady_clock::now() + parent_limit;
    while (read_some(give_up)) {
    }
    int status = 0;
    for (;;) {
      const pid_t done = ::waitpid(m_pid, &status, WNOHANG);
      REQUIRE(done >= 0);
      if (done == m_pid) {
        m_pid = -1;
        return status;
      }
      if (std::chrono::steady_clock::now() > give_up) {
        FAIL("the child did not end within a minute; killed it; reports: '"
             << m_seen << "'\n"
             << describe_process(m_pid));
      }
      std::this_thread::sleep_for(1ms);
    }
  }

  /// Every report so far, in order.
  [[nodiscard]] const std::string& seen() const noexcept { return m_seen; }

 private:
  /// One read of the pipe; false at its end or at `give_up` (then the test fails).
  bool read_some(std::chrono::steady_clock::time_point give_up) {
    for (;;) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        FAIL_CHECK("no report from the child within a minute; reports so far: '"
                   << m_seen << "'\n"
                   << describe_process(m_pid));
        ::kill(m_pid, SIGKILL);
        return false;
      }
      pollfd readable{m_fd, POLLIN, 0};
      const int ready = ::poll(&readable, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) {
        continue;
      }
      REQUIRE(ready >= 0);
      if (ready == 0) {
        continue;  // the limit is checked above
      }
      char buffer[64];
      const ssize_t got = ::read(m_fd, buffer, sizeof buffer);
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got <= 0) {
        return false;
      }
      m_seen.append(buffer, static_cast<std::size_t>(got));
      return true;
    }
  }

  pid_t m_pid = -1;
  int m_fd = -1;
  std::string m_seen;
};

std::string killed_by(int signo) { return "killed by signal " + std::to_string(signo); }

std::string exited_with(int code) { return "exit code " + std::to_string(code); }

/// How a child ended, from its wait status, as the checks compare it: a failed check then shows
/// what happened instead (an exit code of 66 is a ThreadSanitizer report, whose text precedes).
std::string ending(int status) {
  if (WIFEXITED(status)) {
    return exited_with(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return killed_by(WTERMSIG(status));
  }
  return "wait status " + std::to_string(status);
}

// ---- The children's tasks ---------------------------------------------------------------------

/// Async cleanup that completes: a suspension or two, then the report.
task<void> finish_cleanup(int fd) {
  co_await corun::this_task::yield();
  co_await corun::sleep_for(1ms);
  report(fd, cleaned_up);
}

/// Async cleanup that never ends (only a hard exit gets the process out).
task<void> endless_cleanup(int fd) {
  report(fd, hanging);
  co_await corun::this_task::sleep_forever();
}

/// What the task does once it was cancelled.
enum class after_cancel : std::uint8_t { rethrow, return_value, hang };

/// A program's main task: runs until cancelled, checks the cancellation says `expected` came
/// (origin `signal`, message the signal's name), runs its async cleanup shielded, then
/// rethrows, returns 7, or hangs in a cleanup that never ends.
task<int> serve(int fd, std::string expected, after_cancel then) {
  report(fd, started);
  std::optional<corun::cancelled> why;
  try {
    co_await corun::this_task::sleep_forever();
  } catch (const corun::cancelled& c) {
    why = c;
  }
  const bool right = why.has_value() && why->origin() == corun::cancel_origin::signal &&
                     why->message() == expected;
  report(fd, right ? right_cancel : wrong_cancel);
  if (then == after_cancel::hang) {
    co_await corun::shield(endless_cleanup(fd));
  }
  co_await corun::shield(finish_cleanup(fd));
  if (then == after_cancel::rethrow) {
    throw *why;
  }
  co_return 7;
}

/// A child's body: runs `serve` under `run_until_signal` and turns the outcome into an exit
/// code, reporting whether the dispositions of `signals` are the defaults again afterwards.
/// `caller_blocks`: once the workers exist (they take this thread's mask), block `signals` in
/// this thread, and so in the watcher thread that `run_until_signal` starts from it: the kernel
/// can then hand them only to a worker, which sleeps in a futex (the serving task is suspended).
int run_serve(int fd, std::size_t workers, const std::vector<int>& signals,
              const std::string& expected, after_cancel then, std::chrono::nanoseconds grace = 1h,
              bool caller_blocks = false) {
  int code = exit_other;
  {
    corun::runtime rt(with_workers(workers));
    if (caller_blocks) {
      sigset_t blocked;
      sigemptyset(&blocked);
      for (const int signo : signals) {
        sigaddset(&blocked, signo);
      }
      if (pthread_sigmask(SIG_BLOCK, &blocked, nullptr) != 0) {
        return exit_other;
      }
    }
    try {
      const int value = corun::run_until_signal(rt, serve(fd, expected, then), signals, grace);
      code = exit_returned + value;
    } catch (const corun::task_cancelled& e) {
      code =
          contains(e.what(), "cancelled by a signal: " + expected) ? exit_cancelled : exit_bad_what;
    } catch (...) {
      code = exit_other;
    }
  }
  bool defaults = true;
  for (const int signo : signals) {
    defaults = defaults && is_default(signo);
  }
  report(fd, defaults ? restored : not_restored);
  return code;
}

/// For every worker count of `sweep`: a child serving under `run_until_signal(signals)` (see
/// `run_serve` for `caller_blocks`) gets SIGINT, runs its async cleanup and ends cancelled.
void check_sigint_cancels(const std::vector<int>& signals, bool caller_blocks) {
  for (const std::size_t workers : sweep) {
    CAPTURE(workers);
    child_process child([workers, &signals, caller_blocks](int fd) {
      return run_serve(fd, workers, signals, "SIGINT", after_cancel::rethrow, 1h, caller_blocks);
    });
    REQUIRE(child.wait_for(started));
    child.send(SIGINT);
    const int status = child.wait_exit();
    CHECK(child.seen() == "SOCD");
    CHECK(ending(status) == exited_with(exit_cancelled));
  }
}

/// The custom handler of the restoration test.
volatile std::sig_atomic_t g_custom_calls = 0;
void custom_handler(int /*signo*/, siginfo_t* /*info*/, void* /*context*/) { g_custom_calls = 1; }

}  // namespace

TEST_SUITE("lifecycle_run_until_signal") {
  TEST_CASE(
      "run_until_signal without a signal returns the task's value and restores the handlers") {
    const disposition int_before = disposition_of(SIGINT);
    const disposition term_before = disposition_of(SIGTERM);
    for (const std::size_t workers : worker_counts) {
      CAPTURE(workers);
      corun::runtime rt(with_workers(workers));
      bool installed = false;
      const int value = corun::run_until_signal(rt, [&]() -> task<int> {
        co_await corun::this_task::yield();
        installed = disposition_of(SIGINT) != int_before && disposition_of(SIGTERM) != term_before;
        co_return 42;
      }());
      CHECK(value == 42);
      CHECK(installed);
      CHECK(disposition_of(SIGINT) == int_before);
      CHECK(disposition_of(SIGTERM) == term_before);
    }
  }

  TEST_CASE("run_until_signal without a signal: the child's exit code shows the value") {
    child_process child([](int fd) {
      corun::runtime rt(with_workers(2));
      const int value = corun::run_until_signal(rt, value_of(5));
      report(fd, is_default(SIGINT) && is_default(SIGTERM) ? restored : not_restored);
      return exit_returned + value;
    });
    const int status = child.wait_exit();
    CHECK(child.seen() == "D");
    CHECK(ending(status) == exited_with(exit_returned + 5));
  }

  TEST_CASE(
      "SIGINT cancels the task with origin signal, its async cleanup runs, and "
      "run_until_signal throws task_cancelled") {
    check_sigint_cancels({SIGINT, SIGTERM}, false);
  }

  TEST_CASE(
      "a signal that only a parked worker can take (the caller and the watcher block it) "
      "still cancels the task") {
    check_sigint_cancels({SIGINT}, true);
  }

  TEST_CASE(
      "SIGTERM cancels the task the same way, and a task that catches it and returns a value "
      "makes run_until_signal return that value") {
    child_process child([](int fd) {
      return run_serve(fd, 2, {SIGINT, SIGTERM}, "SIGTERM", after_cancel::return_value);
    });
    REQUIRE(child.wait_for(started));
    child.send(SIGTERM);
    const int status = child.wait_exit();
    CHECK(child.seen() == "SOCD");
    CHECK(ending(status) == exited_with(exit_returned + 7));
  }

  TEST_CASE("other signals are named like strsignal's abbreviations, or by number") {
    const int realtime = SIGRTMIN + 1;
    const std::vector<std::pair<int, std::string>> cases = {
        {SIGHUP, "SIGHUP"}, {SIGUSR1, "SIGUSR1"}, {realtime, std::to_string(realtime)}};
    for (const auto& entry : cases) {
      const int signo = entry.first;
      const std::string& name = entry.second;
      CAPTURE(name);
      child_process child(
          [signo, name](int fd) { return run_serve(fd, 2, {signo}, name, after_cancel::rethrow); });
      REQUIRE(child.wait_for(started));
      child.send(signo);
      const int status = child.wait_exit();
      CHECK(child.seen() == "SOCD");
      CHECK(ending(status) == exited_with(exit_cancelled));
    }
  }

  TEST_CASE(
      "a signal that arrives before the task is handed to the watcher still cancels it "
      "(signal_watch, the engine of run_until_signal)") {
    child_process child([](int fd) {
      corun::runtime rt(with_workers(2));
      int code = exit_other;
      try {
        corun::detail::signal_watch watch({SIGUSR1}, 1h);
        ::raise(SIGUSR1);                   // caught: only a byte in the pipe so far
        std::this_thread::sleep_for(10ms);  // likely read by the watcher before `watch`
        corun::join_handle<int> handle = rt.spawn(serve(fd, "SIGUSR1", after_cancel::rethrow));
        watch.watch(handle);
        code = exit_returned + handle.get();
      } catch (const corun::task_cancelled& e) {
        code = contains(e.what(), "SIGUSR1") ? exit_cancelled : exit_bad_what;
      }
      report(fd, is_default(SIGUSR1) ? restored : not_restored);
      return code;
    });
    const int status = child.wait_exit();
    CHECK(child.seen() == "SOCD");
    CHECK(ending(status) == exited_with(exit_cancelled));
  }

  TEST_CASE("a second signal during a cleanup that never ends kills the process by that signal") {
    for (const int first : {SIGINT, SIGTERM}) {
      CAPTURE(first);
      child_process child([first](int fd) {
        // An hour of grace: only the second signal can end it.
        return run_serve(fd, 2, {SIGINT, SIGTERM}, first == SIGINT ? "SIGINT" : "SIGTERM",
                         after_cancel::hang, 1h);
      });
      REQUIRE(child.wait_for(started));
      child.send(first);
      REQUIRE(child.wait_for(hanging));
      child.send(SIGINT);
      const int status = child.wait_exit();
      CHECK(child.seen() == "SOH");
      CHECK(ending(status) == killed_by(SIGINT));
    }
  }

  TEST_CASE(
      "the grace period passing with the cleanup still running kills the process by the "
      "first signal") {
    child_process child([](int fd) {
      return run_serve(fd, 2, {SIGINT, SIGTERM}, "SIGTERM", after_cancel::hang, 200ms);
    });
    REQUIRE(child.wait_for(started));
    child.send(SIGTERM);
    const int status = child.wait_exit();
    CHECK(child.seen() == "SOH");
    CHECK(ending(status) == killed_by(SIGTERM));
  }

  TEST_CASE("run_until_signal propagates the task's own exception and restores the handlers") {
    const disposition int_before = disposition_of(SIGINT);
    corun::runtime rt(with_workers(2));
    int id = -1;
    try {
      static_cast<void>(corun::run_until_signal(rt, fail_after(2, 9)));
    } catch (const test_error& e) {
      id = e.id();
    }
    CHECK(id == 9);
    CHECK(disposition_of(SIGINT) == int_before);
  }

  TEST_CASE("a signal not in the set is not caught") {
    const disposition int_before = disposition_of(SIGINT);
    {
      corun::runtime rt(with_workers(2));
      bool untouched = false;
      corun::run_until_signal(rt,
                              [&]() -> task<void> {
                                untouched = disposition_of(SIGINT) == int_before;
                                co_return;
                              }(),
                              {SIGTERM});
      CHECK(untouched);
    }
    // And in a child, SIGINT keeps its default action: it kills, no cleanup runs.
    child_process child(
        [](int fd) { return run_serve(fd, 2, {SIGTERM}, "SIGTERM", after_cancel::rethrow); });
    REQUIRE(child.wait_for(started));
    child.send(SIGINT);
    const int status = child.wait_exit();
    CHECK(child.seen() == "S");
    CHECK(ending(status) == killed_by(SIGINT));
  }

  TEST_CASE("run_until_signal on a worker thread throws logic_error") {
    corun::runtime rt(with_workers(2));
    bool refused = false;
    rt.block_on([&]() -> task<void> {
      try {
        static_cast<void>(corun::run_until_signal(rt, value_of(1)));
      } catch (const std::logic_error& e) {
        refused = contains(e.what(), "worker thread");
      }
      co_return;
    }());
    CHECK(refused);
  }

  TEST_CASE(
      "a second run_until_signal while one runs throws logic_error, and leaves the first "
      "one's handlers in place") {
    std::atomic<bool> running{false};
    std::atomic<bool> release{false};
    std::atomic<int> outer_value{0};
    std::thread outer([&] {
      corun::runtime rt(with_workers(2));
      outer_value = corun::run_until_signal(rt, [&]() -> task<int> {
        running.store(true, std::memory_order_release);
        while (!release.load(std::memory_order_acquire)) {
          co_await corun::sleep_for(1ms);
        }
        co_return 3;
      }());
    });
    const bool up = wait_until_set(running);
    CHECK(up);
    if (up) {
      const disposition during = disposition_of(SIGINT);
      bool refused = false;
      {
        corun::runtime rt(with_workers(1));
        try {
          static_cast<void>(corun::run_until_signal(rt, value_of(1)));
        } catch (const std::logic_error& e) {
          refused = contains(e.what(), "already running");
        }
      }
      CHECK(refused);
      CHECK(disposition_of(SIGINT) == during);
    }
    release.store(true, std::memory_order_release);
    outer.join();
    CHECK(outer_value == 3);
  }

  TEST_CASE("uncatchable signals and a negative grace are refused, and leave nothing behind") {
    const disposition int_before = disposition_of(SIGINT);
    corun::runtime rt(with_workers(1));
    CHECK_THROWS_AS(static_cast<void>(corun::run_until_signal(rt, value_of(1), {SIGINT, SIGKILL})),
                    std::invalid_argument);
    CHECK_THROWS_AS(static_cast<void>(corun::run_until_signal(rt, value_of(1), {SIGSTOP})),
                    std::invalid_argument);
    CHECK_THROWS_AS(static_cast<void>(corun::run_until_signal(rt, value_of(1), {SIGINT}, -1s)),
                    std::invalid_argument);
    CHECK(disposition_of(SIGINT) == int_before);
    // The claim was released: the next call runs.
    CHECK(corun::run_until_signal(rt, value_of(2), {SIGINT, SIGINT}) == 2);
    CHECK(disposition_of(SIGINT) == int_before);
  }

  TEST_CASE("a custom handler installed before run_until_signal is restored exactly") {
    struct sigaction saved {};
    REQUIRE(::sigaction(SIGINT, nullptr, &saved) == 0);
    struct sigaction custom {};
    custom.sa_sigaction = &custom_handler;
    custom.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&custom.sa_mask);
    sigaddset(&custom.sa_mask, SIGUSR2);
    REQUIRE(::sigaction(SIGINT, &custom, nullptr) == 0);
    const disposition before = disposition_of(SIGINT);

    {
      corun::runtime rt(with_workers(2));
      CHECK(corun::run_until_signal(rt, value_of(4)) == 4);
    }
    CHECK(disposition_of(SIGINT) == before);
    g_custom_calls = 0;
    ::raise(SIGINT);  // the custom handler runs again, not run_until_signal's
    CHECK(g_custom_calls == 1);

    REQUIRE(::sigaction(SIGINT, &saved, nullptr) == 0);
  }
}
