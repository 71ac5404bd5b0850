/// \file
/// When a thief sleeps before it steals again: after a trip that brought it leaves worth less
/// than the trip cost, from a victim that goes on spawning.
///
/// Why. A worker whose task spawns many tiny children (a spawn storm) runs them faster alone
/// than with a thief beside it. Each steal trip moves the victim's deque lines, the tasks' frames
/// and their parent's count between the cores, and the thief's share of the work does not pay
/// for that: on the two-worker storm (a million empty children of one task, Zen 4 EPYC VM) a
/// trip of about 12 tasks took ~150 ns and running them ~420, and two workers took 28 ns per
/// task where one took 17 (over 100 in the VM's slow phases for cross-core traffic). A thief
/// that stays away lets the victim run its children itself, at once (work-first spawns,
/// worker.cpp). It sleeps rather than spins: a spinning thief still cost the storm ~2.5 ns per
/// task (19.6 against 17.3 ns, six interleaved rounds), as the VM's two cores are not
/// independent, and a sleeping one costs no processor time. Stealing stays as eager as before
/// wherever it pays: when a batch spawned anything (a tree: what it took is a subtree), or ran
/// for at least `worth_ratio` times what its trip cost (storm_work's trips, children of ~250 ns,
/// brought ~25 times their cost; fib's and skynet's, whole subtrees, thousands of times).
///
/// Protocol (one object per worker, used by its owner only; times in ns of a monotonic clock):
///  1. `trip_done(begin, end, victim_spawns)` after a trip that stole something, with the
///     victim's spawn count read after it.
///  2. When the worker next runs dry, before it searches: `sleep_before_search(now,
///     spawned_nothing, victim_spawns)` judges the trip. It returns 0 (search at once) unless
///     the tasks run since spawned nothing, took less than `worth_ratio` trips, and the victim
///     spawned meanwhile. A victim that spawned nothing is no longer making tasks and running
///     them as it goes: it runs something else, and what waits in its deque may wait as long
///     (its owner pops that deque only between tasks), so it is stolen at once.
///  3. Otherwise the worker sleeps `sleep_trips` trips' time: ~5 us asked, which the kernel's
///     shortest sleep rounds up (about 70 us on the EPYC VM with the default timer slack, 15 us
///     with none). Every further trip of the same kind is judged afresh.
///
/// The sleep never loses work: it is bounded, and the worker then searches and parks as before
/// (a sleeping thief is neither searching nor parked, so pushes elsewhere wake parked workers as
/// usual). tests/sched_steal_backoff.cpp tests each step with made-up times.
#pragma once

#include <cstdint>
#include <utility>

namespace corun::detail {

class steal_backoff {
 public:
  /// A batch that ran shorter than this many trips did not pay for its trip.
  static constexpr std::uint64_t worth_ratio = 4;
  /// How long a thief sleeps after a trip that did not pay, in trips.
  static constexpr std::uint64_t sleep_trips = 32;

  /// Step 1: a trip that took at least one task ran from `begin` to `end`, after which its
  /// victim's spawn count read `victim_spawns`.
  void trip_done(std::uint64_t begin, std::uint64_t end, std::uint64_t victim_spawns) noexcept {
    m_trip_end = end;
    m_trip_cost = end - begin;
    m_victim_spawns = victim_spawns;
    m_judged = false;
  }

  /// Whether a trip waits for step 2: the worker reads the clock and its counters only then.
  [[nodiscard]] bool has_trip_to_judge() const noexcept { return !m_judged; }

  /// Step 2: the worker ran dry at `now`; `spawned_nothing`: the tasks it ran since the last
  /// trip spawned no task. `victim_spawns` reads the victim's spawn count; it is called only
  /// for a batch that did not pay (it reads a line the victim writes on every spawn). Returns
  /// how long to sleep before searching, 0 for not at all.
  template <typename ReadSpawns>
  [[nodiscard]] std::uint64_t sleep_before_search(std::uint64_t now, bool spawned_nothing,
                                                  ReadSpawns&& victim_spawns) {
    if (m_judged) {
      return 0;  // no trip since the last judgement: a search that found nothing, or a wake-up
    }
    m_judged = true;
    if (!spawned_nothing || now - m_trip_end >= worth_ratio * m_trip_cost) {
      return 0;
    }
    if (std::forward<ReadSpawns>(victim_spawns)() == m_victim_spawns) {
      return 0;  // the victim went on to something else: its queue is worth stealing
    }
    return sleep_trips * m_trip_cost;
  }

 private:
  std::uint64_t m_trip_end = 0;
  std::uint64_t m_trip_cost = 0;
  std::uint64_t m_victim_spawns = 0;
  /// The last trip was judged (or there was none yet).
  bool m_judged = true;
};

}  // namespace corun::detail
