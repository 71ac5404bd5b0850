/// \file
/// The live-task registry behind `runtime::dump_tasks` (on when `runtime_options::track_tasks`).
///
/// Tracked tasks sit in sharded intrusive lists (links in their extras) from spawn until their
/// completion. A dump copies one shard at a time under that shard's lock only, so a worker that
/// spawns or completes a tracked task waits at most for the copy of one shard, never for the
/// whole dump. The price is consistency: a dump is a racy snapshot, not an atomic one (see
/// `snapshot`).
#pragma once

#include "corun/detail/config.hpp"
#include "corun/detail/task_node.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace corun::detail {

class task_tracker {
 public:
  /// Starts tracking `node` (spawned, not yet published). Without memory for its extras the
  /// task runs untracked and is counted in `untracked()`.
  void track(task_node& node) noexcept;
  /// Stops tracking `node` if it was tracked; called before its completion is published.
  void untrack(task_node& node) noexcept;
  /// Records for dumps that the running task `self` waits (`kind`) for `awaited` (a join or a
  /// start; only the address is kept). Only while tracking; nothing is recorded for a task that
  /// runs untracked.
  static void note_wait(task_node& self, wait_kind kind, const task_node* awaited) noexcept;

  /// One task as a dump shows it.
  struct entry {
    std::uint64_t id;
    std::string name;
    std::uint64_t parent_id;  // 0: a root task; for a group member, the group's owner
    std::uint64_t group_id;   // 0: not in a group (its parent scope is a task or the root)
    std::string state;
    std::uint64_t awaiting_id;  // 0: not awaiting (or starting) a task of this snapshot
  };
  /// The tracked tasks, in id order. Copied one shard at a time: a task spawned or completed
  /// meanwhile may be in it or not, so a task may appear without its parent (both spawned during
  /// the dump, the parent into a shard already copied), and `awaiting_id` names a task only if
  /// that task is in the same snapshot. Every entry was read while its task was
  /// alive; nothing else is promised.
  [[nodiscard]] std::vector<entry> snapshot();
  [[nodiscard]] std::uint64_t untracked() const noexcept {
    return m_untracked.load(std::memory_order_relaxed);
  }

  static void write_text(std::ostream& out, const std::vector<entry>& tasks,
                         std::uint64_t untracked);
  static void write_json(std::ostream& out, const std::vector<entry>& tasks,
                         std::uint64_t untracked);

 private:
  struct alignas(cache_line) shard {
    std::atomic<bool> locked{false};
    task_node* head = nullptr;  // guarded by locked
  };
  static constexpr std::size_t shard_count = 16;

  static void lock(shard& s) noexcept;
  static void unlock(shard& s) noexcept;
  shard& shard_of(const task_node& node) noexcept;

  shard m_shards[shard_count];
  std::atomic<std::uint64_t> m_untracked{0};
};

}  // namespace corun::detail
