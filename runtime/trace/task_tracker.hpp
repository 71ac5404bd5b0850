/// \file
/// The live-task registry behind `runtime::dump_tasks` (on when `runtime_options::track_tasks`).
///
/// Tracked tasks sit in sharded intrusive lists (links in their extras) from spawn until their
/// completion. A dump takes every shard's lock while it copies what it prints, so no tracked
/// task can complete (completion unlinks first) and every pointer it follows is alive; workers
/// only wait if they spawn or complete a tracked task during that copy.
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

  /// One task as a dump shows it.
  struct entry {
    std::uint64_t id;
    std::string name;
    std::uint64_t parent_id;  // 0: a root task
    bool in_group;            // its parent scope is a group (parent_id is the group's owner)
    std::string state;
    std::uint64_t awaiting_id;  // 0: not awaiting a tracked task
  };
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
