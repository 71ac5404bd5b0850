/// \file
/// The channel workloads on two `std::thread`s (see workload.hpp): the same ping-pong and
/// stream, through a bounded queue made of a `std::mutex` and two condition variables, the
/// textbook blocking queue a corun channel replaces. At one thread both threads are pinned to
/// one CPU; at two they may use the first two CPUs the process may run on.

#include "channel/workload.hpp"
#include "common/harness.hpp"

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>

namespace bench::channel {
namespace {

/// A bounded FIFO queue for threads: `push` blocks while full, `pop` while empty.
class blocking_queue {
 public:
  explicit blocking_queue(std::size_t capacity) : m_capacity(capacity) {}

  void push(long item) {
    {
      std::unique_lock lock(m_lock);
      m_not_full.wait(lock, [&] { return m_items.size() < m_capacity; });
      m_items.push_back(item);
    }
    m_not_empty.notify_one();
  }
  [[nodiscard]] long pop() {
    long item = 0;
    {
      std::unique_lock lock(m_lock);
      m_not_empty.wait(lock, [&] { return !m_items.empty(); });
      item = m_items.front();
      m_items.pop_front();
    }
    m_not_full.notify_one();
    return item;
  }

 private:
  std::size_t m_capacity;
  std::mutex m_lock;
  std::condition_variable m_not_full;
  std::condition_variable m_not_empty;
  std::deque<long> m_items;  // guarded by m_lock
};

/// The first `count` CPUs this process may run on.
cpu_set_t first_cpus(std::size_t count) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof(allowed), &allowed);
  cpu_set_t chosen;
  CPU_ZERO(&chosen);
  std::size_t taken = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && taken < count; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) {
      CPU_SET(cpu, &chosen);
      ++taken;
    }
  }
  return chosen;
}

/// Runs `first` and `second` on two threads restricted to `cpus`, and waits for both.
template <class First, class Second>
void run_pair(const cpu_set_t& cpus, First first, Second second) {
  const auto pinned = [&cpus](auto body) {
    return std::thread([&cpus, body] {
      pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
      body();
    });
  };
  std::thread a = pinned(first);
  std::thread b = pinned(second);
  a.join();
  b.join();
}

long pingpong(long rounds, const cpu_set_t& cpus) {
  blocking_queue requests(pingpong_capacity);
  blocking_queue answers(pingpong_capacity);
  long sum = 0;  // written by the ping thread, read after join
  run_pair(
      cpus,
      [&] {
        for (long i = 0; i < rounds; ++i) {
          requests.push(i);
          sum += answers.pop();
        }
      },
      [&] {
        for (long i = 0; i < rounds; ++i) {
          answers.push(requests.pop() + 1);
        }
      });
  return sum;
}

long stream(long messages, const cpu_set_t& cpus) {
  blocking_queue queue(stream_capacity);
  long sum = 0;  // written by the consumer thread, read after join
  run_pair(
      cpus,
      [&] {
        for (long i = 0; i < messages; ++i) {
          queue.push(i);
        }
      },
      [&] {
        for (long i = 0; i < messages; ++i) {
          sum += queue.pop();
        }
      });
  return sum;
}

void run_pingpong(benchmark::State& state) {
  const long rounds = pingpong_rounds();
  const cpu_set_t cpus = first_cpus(threads(state));
  measure(state, [&] { return check(state, pingpong(rounds, cpus), pingpong_expected(rounds)); });
  report_tasks(state, static_cast<double>(pingpong_messages(rounds)));
}

void run_stream(benchmark::State& state) {
  const long messages = stream_messages();
  const cpu_set_t cpus = first_cpus(threads(state));
  measure(state, [&] { return check(state, stream(messages, cpus), stream_expected(messages)); });
  report_tasks(state, static_cast<double>(messages));
}

}  // namespace

BENCHMARK(run_pingpong)->Name("channel_pingpong/threads")->Apply(per_thread_count);
BENCHMARK(run_stream)->Name("channel/threads")->Apply(per_thread_count);

}  // namespace bench::channel
