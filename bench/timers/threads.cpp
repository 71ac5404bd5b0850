/// \file
/// The `timers` baseline without a runtime (see workload.hpp): a classic timer thread. One
/// thread per sleeper cannot reach a million, so `<threads>` threads arm their share of the
/// deadlines into one `std::priority_queue` under a `std::mutex`, and one more thread waits on a
/// `std::condition_variable` until the earliest deadline, takes what is due and calls each
/// callback after unlocking (as corun's timer queue does).

#include "common/harness.hpp"
#include "timers/workload.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <queue>
#include <thread>
#include <vector>

namespace bench::timers {
namespace {

using std::chrono::steady_clock;

/// A timer: ties between equal deadlines go in arming order, as in corun.
struct timer {
  steady_clock::time_point deadline;
  std::uint64_t seq;
  void (*callback)(void*) noexcept;
  void* argument;
};

/// Orders the priority queue's top as the earliest (deadline, seq).
struct later {
  bool operator()(const timer& a, const timer& b) const noexcept {
    return a.deadline > b.deadline || (a.deadline == b.deadline && a.seq > b.seq);
  }
};

/// One queue and the thread that fires it; the thread ends after firing `expected` timers, and
/// the destructor joins it.
class timer_thread {
 public:
  explicit timer_thread(long expected) : m_thread([this, expected] { serve(expected); }) {}
  timer_thread(const timer_thread&) = delete;
  timer_thread& operator=(const timer_thread&) = delete;
  ~timer_thread() { m_thread.join(); }

  /// Callable from any thread.
  void arm(steady_clock::time_point deadline, void (*callback)(void*) noexcept, void* argument) {
    bool earliest = false;
    {
      const std::lock_guard lock(m_mutex);
      const std::uint64_t seq = m_seq++;
      m_queue.push(timer{deadline, seq, callback, argument});
      earliest = m_queue.top().seq == seq;
    }
    if (earliest) {
      m_changed.notify_one();  // the timer thread sleeps until a later deadline, or for ever
    }
  }

 private:
  void serve(long expected) {
    std::vector<timer> due;
    long fired = 0;
    std::unique_lock lock(m_mutex);
    while (fired < expected) {
      if (m_queue.empty()) {
        m_changed.wait(lock);
        continue;
      }
      const steady_clock::time_point now = steady_clock::now();
      // A copy: waiting unlocks, and an armer may then move the top (reallocating the heap).
      const steady_clock::time_point earliest = m_queue.top().deadline;
      if (now < earliest) {
        m_changed.wait_until(lock, earliest);
        continue;
      }
      while (!m_queue.empty() && m_queue.top().deadline <= now) {
        due.push_back(m_queue.top());
        m_queue.pop();
      }
      lock.unlock();
      for (const timer& each : due) {
        each.callback(each.argument);
      }
      fired += static_cast<long>(due.size());
      due.clear();
      lock.lock();
    }
  }

  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::priority_queue<timer, std::vector<timer>, later> m_queue;  // guarded by m_mutex
  std::uint64_t m_seq = 0;                                        // guarded by m_mutex
  std::thread m_thread;  // last: starts once the members it uses exist
};

/// The callback: counts a fired timer. Only the timer thread calls it.
void count_fired(void* counter) noexcept { ++*static_cast<long*>(counter); }

std::optional<run_phases> fire_once(benchmark::State& state, long total,
                                    std::chrono::nanoseconds lead, long armers) {
  long fired = 0;  // written by the timer thread, read after it was joined
  const steady_clock::time_point start = steady_clock::now();
  const steady_clock::time_point first = start + lead;
  steady_clock::time_point armed;
  {
    timer_thread timers(total);
    std::vector<std::thread> arming;
    arming.reserve(static_cast<std::size_t>(armers));
    for (long a = 0; a < armers; ++a) {
      // Armer `a` arms timers a, a + armers, ...: between them, the same deadlines as corun.
      arming.emplace_back([&timers, &fired, first, total, armers, a] {
        for (long i = a; i < total; i += armers) {
          timers.arm(first + offset(i, total, spread()), count_fired, &fired);
        }
      });
    }
    for (std::thread& armer : arming) {
      armer.join();
    }
    armed = steady_clock::now();
  }
  const steady_clock::time_point done = steady_clock::now();
  if (!check(state, fired, total)) {
    return std::nullopt;
  }
  return run_phases{armed - start, done - std::max(armed, first)};
}

void run(benchmark::State& state) {
  const long total = count();
  const auto armers = static_cast<long>(threads(state));
  measure_phases(state, total, [&](std::chrono::nanoseconds lead) {
    return fire_once(state, total, lead, armers);
  });
}

}  // namespace

BENCHMARK(run)->Name("timers/threads")->Apply(per_thread_count_manual);

}  // namespace bench::timers
