/// \file
/// When a thief waits before it steals again: after a trip that brought it leaves worth less
/// than the trip cost.
///
/// Why. A worker whose task spawns many tiny children (a spawn storm) runs them faster alone
/// than with a thief beside it. Each steal trip moves the victim's deque lines, the tasks' frames
/// and their parent's count between the cores, and the thief's share of the work does not pay
/// for that: on the two-worker storm (a million empty children of one task, Zen 4 EPYC VM) a
/// trip of about 12 tasks took ~390 TSC cycles and running them ~1,100, and two workers took 28
/// ns per task where one took 17 (over 100 in the VM's slow phases for cross-core traffic). A
/// thief that waits lets the victim run its children itself, at once (work-first spawns,
/// worker.cpp): eight interleaved rounds, two workers, 20-26 ns per task in either phase.
/// Stealing stays as eager as before wherever it pays: when a batch spawned anything (a tree:
/// what it took is a subtree), or ran for at least `worth_ratio` times what its trip cost
/// (storm_work's trips, children of ~250 ns, brought ~25 times their cost; fib never waited).
/// `worth_ratio` 8, and longest waits of 16,000 to 256,000 cycles, gave the same storm times.
///
/// Protocol (one object per worker, used by its owner only; times are cycle counts, whose unit
/// cancels out: every bound is a multiple of a measured trip):
///  1. `trip_done(begin, end)` after a trip that stole something.
///  2. When the worker next runs dry, before it searches: `wait_before_search(now,
///     spawned_nothing)` judges the trip. It returns 0 (search at once) unless the tasks run
///     since spawned nothing and took less than `worth_ratio` trips. Then it returns a wait:
///     `first_wait_trips` trips, doubled on every further such trip in a row, at most
///     `max_wait_trips`. A trip that paid ends the streak.
///  3. While waiting, the worker calls `keep_waiting(now, victim_spawns)` between pauses. It
///     ends the wait at its deadline, or early once the victim spawned nothing for
///     `progress_trips` trips' time: a victim that stopped spawning is no longer running the
///     children as it makes them, and what waits in its deque may wait for as long as the task
///     it runs now (its owner pops that deque only between tasks).
///
/// The wait never loses work: it is bounded, and the worker then searches and parks as before
/// (a waiting worker is neither searching nor asleep, so pushes elsewhere wake sleepers as
/// usual). tests/sched_steal_backoff.cpp tests each step with made-up cycle counts.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

namespace corun::detail {

class steal_backoff {
 public:
  /// A batch that ran shorter than this many trips did not pay for its trip.
  static constexpr std::uint64_t worth_ratio = 4;
  /// The first wait after a trip that did not pay, in trips.
  static constexpr std::uint64_t first_wait_trips = 2;
  /// The longest wait, in trips: ~12,500 cycles (~5 us) on the EPYC VM's trips of ~390.
  static constexpr std::uint64_t max_wait_trips = 32;
  /// A waiting thief looks at its victim's spawn count once per this many trips' time.
  static constexpr std::uint64_t progress_trips = 2;

  /// Step 1: a trip that took at least one task ran from `begin` to `end`.
  void trip_done(std::uint64_t begin, std::uint64_t end) noexcept {
    m_trip_end = end;
    m_trip_cost = end - begin;
  }

  /// Step 2: the worker ran dry at `now`; `spawned_nothing`: the tasks it ran since the last
  /// trip spawned no task. Returns how long to wait before searching, 0 for not at all.
  [[nodiscard]] std::uint64_t wait_before_search(std::uint64_t now, bool spawned_nothing) noexcept {
    if (m_trip_end == 0) {
      return 0;  // no trip since the last judgement: a search that found nothing, or a wake-up
    }
    const std::uint64_t ran = now - m_trip_end;
    m_trip_end = 0;
    if (!spawned_nothing || ran >= worth_ratio * m_trip_cost) {
      m_wait = 0;
      return 0;
    }
    m_wait = m_wait == 0 ? first_wait_trips * m_trip_cost
                         : std::min(2 * m_wait, max_wait_trips * m_trip_cost);
    m_deadline = now + m_wait;
    m_victim_spawns_seen = no_count;
    return m_wait;
  }

  /// Step 3: whether to go on waiting at `now`. `victim_spawns` reads the victim's spawn count:
  /// at the first call of a wait, then once per `progress_trips` trips (it reads a line the
  /// victim writes on every spawn).
  template <typename ReadSpawns>
  [[nodiscard]] bool keep_waiting(std::uint64_t now, ReadSpawns&& victim_spawns) {
    if (now >= m_deadline) {
      return false;
    }
    if (m_victim_spawns_seen != no_count && now < m_next_look) {
      return true;
    }
    const std::uint64_t spawns = std::forward<ReadSpawns>(victim_spawns)();
    if (spawns == m_victim_spawns_seen) {
      m_wait = 0;  // the victim went on to something else: its queue is worth stealing
      return false;
    }
    m_victim_spawns_seen = spawns;
    m_next_look = now + progress_trips * m_trip_cost;
    return true;
  }

 private:
  /// No spawn count read yet in this wait (a count the victim never shows twice in a row).
  static constexpr std::uint64_t no_count = ~std::uint64_t{0};

  /// When the last trip ended; 0 once it was judged, or before the first (a cycle count is
  /// never 0 on a running machine).
  std::uint64_t m_trip_end = 0;
  std::uint64_t m_trip_cost = 0;
  /// The current wait; 0 when the last judged trip paid.
  std::uint64_t m_wait = 0;
  std::uint64_t m_deadline = 0;
  std::uint64_t m_next_look = 0;
  std::uint64_t m_victim_spawns_seen = no_count;
};

}  // namespace corun::detail
