// The live-task registry and the task dump (task_tracker.hpp).
#include "trace/task_tracker.hpp"

#include "corun/detail/group_scope.hpp"
#include "corun/detail/task_node.hpp"

#include "scheduler/task_extras.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace corun::detail {

void task_tracker::lock(shard& s) noexcept {
  // Acquire: the holder sees the previous holder's list changes.
  while (s.locked.exchange(true, std::memory_order_acquire)) {
    while (s.locked.load(std::memory_order_relaxed)) {
      std::this_thread::yield();
    }
  }
}

// Release: publishes the list changes to the next holder.
void task_tracker::unlock(shard& s) noexcept { s.locked.store(false, std::memory_order_release); }

task_tracker::shard& task_tracker::shard_of(const task_node& node) noexcept {
  // Frames are at least 64-byte aligned blocks: skip the low bits.
  return m_shards[(reinterpret_cast<std::uintptr_t>(&node) >> 6) % shard_count];
}

void task_tracker::track(task_node& node) noexcept {
  task_extras* extras = nullptr;
  try {
    extras = &ensure_extras(node);
  } catch (...) {
    // Relaxed: a statistic.
    m_untracked.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  shard& s = shard_of(node);
  lock(s);
  extras->tracked = true;
  extras->live_prev = nullptr;
  extras->live_next = s.head;
  if (s.head != nullptr) {
    s.head->m_extras.load(std::memory_order_relaxed)->live_prev = &node;
  }
  s.head = &node;
  unlock(s);
}

void task_tracker::note_wait(task_node& self, wait_kind kind, const task_node* awaited) noexcept {
  // Acquire: pairs with the release that installed the extras (ensure_extras). Relaxed stores:
  // read racily by dumps (snapshot), which take `awaiting` only for the kinds that set it.
  if (task_extras* extras = self.m_extras.load(std::memory_order_acquire); extras != nullptr) {
    extras->awaiting.store(awaited, std::memory_order_relaxed);
  }
  self.m_wait.store(static_cast<std::uint8_t>(kind), std::memory_order_relaxed);
}

void task_tracker::untrack(task_node& node) noexcept {
  // Acquire: pairs with the CAS that created the extras (possibly on the spawning thread).
  task_extras* extras = node.m_extras.load(std::memory_order_acquire);
  if (extras == nullptr || !extras->tracked) {
    return;
  }
  shard& s = shard_of(node);
  lock(s);
  if (extras->live_prev != nullptr) {
    extras->live_prev->m_extras.load(std::memory_order_relaxed)->live_next = extras->live_next;
  } else {
    s.head = extras->live_next;
  }
  if (extras->live_next != nullptr) {
    extras->live_next->m_extras.load(std::memory_order_relaxed)->live_prev = extras->live_prev;
  }
  extras->tracked = false;
  unlock(s);
}

namespace {

const char* describe_wait(wait_kind kind) noexcept {
  switch (kind) {
    case wait_kind::join:
      return "awaiting";
    case wait_kind::children:
      return "waiting for its children";
    case wait_kind::group:
      return "joining a task group";
    case wait_kind::start:
      return "starting";
    case wait_kind::yield:
      return "yielded";
    case wait_kind::cancel:
      return "sleeping until cancelled";
    case wait_kind::sleep:
      return "sleeping";
    case wait_kind::lock:
      return "waiting for a lock or semaphore";
    case wait_kind::event:
      return "waiting for an event";
    case wait_kind::channel:
      return "waiting on a channel";
    case wait_kind::none:
      break;
  }
  return "runnable or running";
}

}  // namespace

std::vector<task_tracker::entry> task_tracker::snapshot() {
  /// Holds one shard's lock for the copy of that shard (also when the copy throws).
  class shard_guard {
   public:
    explicit shard_guard(shard& s) noexcept : m_shard(s) { lock(m_shard); }
    shard_guard(const shard_guard&) = delete;
    shard_guard& operator=(const shard_guard&) = delete;
    ~shard_guard() { unlock(m_shard); }

   private:
    shard& m_shard;
  };

  std::vector<entry> out;
  // The task each entry awaits, by address only: it may be freed as soon as its shard is not
  // held, so it is never dereferenced, only looked up among the tasks copied (step 2).
  std::vector<const task_node*> awaited;
  std::unordered_map<const task_node*, std::uint64_t> ids;
  // Step 1: one shard at a time. A task in the list is alive while its shard is held (its
  // completion unlinks it first), and so are the scopes above it: a task completes only after
  // its children, and a group lives until its last child completed. The task it awaits may be
  // in a shard not held: only its address is kept.
  for (shard& s : m_shards) {
    const shard_guard held(s);
    for (const task_node* n = s.head; n != nullptr;
         n = n->m_extras.load(std::memory_order_relaxed)->live_next) {
      entry e{n->id(), n->name(), 0, 0, {}, 0};
      const scope_node* parent = n->m_parent;
      if (parent != nullptr && parent->kind() == scope_kind::group) {
        e.group_id = static_cast<const group_scope*>(parent)->id();
        parent = parent->m_parent;  // the group's owner
      }
      // Other scopes between a task and the task that owns them (a persistent group's scope,
      // whose owner is the group's host task) are not shown: the task is listed under that
      // owner. They live while the task does (a scope outlives its children).
      while (parent != nullptr && parent->kind() != scope_kind::task &&
             parent->kind() != scope_kind::root) {
        parent = parent->m_parent;
      }
      if (parent != nullptr && parent->kind() == scope_kind::task) {
        e.parent_id = static_cast<const task_node*>(parent)->id();
      }
      // Relaxed: a snapshot for people; the fields may be changing while we read.
      const auto kind = static_cast<wait_kind>(n->m_wait.load(std::memory_order_relaxed));
      e.state = describe_wait(kind);
      const bool names_task = kind == wait_kind::join || kind == wait_kind::start;
      awaited.push_back(names_task ? n->m_extras.load(std::memory_order_relaxed)
                                         ->awaiting.load(std::memory_order_relaxed)
                                   : nullptr);
      ids.emplace(n, e.id);
      out.push_back(std::move(e));
    }
  }
  // Step 2, unlocked. An address is in one shard only, so `ids` holds one task per address: the
  // one copied with that shard. (If the awaited task completed and its frame was reused by a
  // new task before that copy, the dump names the new one: a racy snapshot, never a freed read.)
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (awaited[i] != nullptr) {
      if (const auto found = ids.find(awaited[i]); found != ids.end()) {
        out[i].awaiting_id = found->second;
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const entry& a, const entry& b) { return a.id < b.id; });
  return out;
}

void task_tracker::write_text(std::ostream& out, const std::vector<entry>& tasks,
                              std::uint64_t untracked) {
  // The tree has two kinds of nodes: tasks, and groups (a header line owned by the group's
  // owner task, the group's members below it).
  std::unordered_set<std::uint64_t> ids;
  for (const entry& e : tasks) {
    ids.insert(e.id);
  }
  std::unordered_map<std::uint64_t, std::vector<const entry*>> direct_children;
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> groups_of;  // by owner
  std::unordered_map<std::uint64_t, std::vector<const entry*>> members;     // by group
  std::vector<const entry*> root_tasks;
  std::vector<std::uint64_t> root_groups;  // groups whose owner is not in the dump
  for (const entry& e : tasks) {
    const bool owner_listed = e.parent_id != 0 && ids.count(e.parent_id) != 0;
    if (e.group_id == 0) {
      (owner_listed ? direct_children[e.parent_id] : root_tasks).push_back(&e);
      continue;
    }
    std::vector<const entry*>& group = members[e.group_id];
    if (group.empty()) {  // first member seen: place the group's header
      (owner_listed ? groups_of[e.parent_id] : root_groups).push_back(e.group_id);
    }
    group.push_back(&e);
  }
  out << tasks.size() << " live task" << (tasks.size() == 1 ? "" : "s");
  if (untracked != 0) {
    out << " (and " << untracked << " untracked for lack of memory)";
  }
  out << '\n';

  struct item {
    const entry* task;    // null: the header of `group`
    std::uint64_t group;  // for a header
    std::size_t depth;
  };
  // Depth first with an explicit stack: trees may be deeper than the thread's stack allows.
  // Pushed in reverse, so that each level prints its tasks first (by id), then its groups (in
  // the order of their first members).
  std::vector<item> stack;
  const auto push_level = [&](const std::vector<const entry*>* level_tasks,
                              const std::vector<std::uint64_t>* level_groups, std::size_t depth) {
    if (level_groups != nullptr) {
      for (auto it = level_groups->rbegin(); it != level_groups->rend(); ++it) {
        stack.push_back({nullptr, *it, depth});
      }
    }
    if (level_tasks != nullptr) {
      for (auto it = level_tasks->rbegin(); it != level_tasks->rend(); ++it) {
        stack.push_back({*it, 0, depth});
      }
    }
  };
  const auto find = [](const auto& map, std::uint64_t key) {
    const auto found = map.find(key);
    return found != map.end() ? &found->second : nullptr;
  };
  push_level(&root_tasks, &root_groups, 0);
  while (!stack.empty()) {
    const item top = stack.back();
    stack.pop_back();
    out << std::string(2 * top.depth, ' ');
    if (top.task == nullptr) {
      out << "group #" << top.group << '\n';
      push_level(find(members, top.group), nullptr, top.depth + 1);
      continue;
    }
    const entry& e = *top.task;
    out << "task #" << e.id;
    if (!e.name.empty()) {
      out << " '" << e.name << "'";
    }
    out << " [" << e.state;
    if (e.awaiting_id != 0) {
      out << " task #" << e.awaiting_id;
    }
    out << ']';
    if (e.group_id != 0) {
      out << " (in group #" << e.group_id << ')';
    }
    out << '\n';
    push_level(find(direct_children, e.id), find(groups_of, e.id), top.depth + 1);
  }
}

namespace {

void write_json_string(std::ostream& out, const std::string& text) {
  out << '"';
  for (const char c : text) {
    switch (c) {
      case '"':
        out << "\\\"";
        break;
      case '\\':
        out << "\\\\";
        break;
      case '\n':
        out << "\\n";
        break;
      case '\t':
        out << "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(c));
          out << buffer;
        } else {
          out << c;
        }
    }
  }
  out << '"';
}

}  // namespace

void task_tracker::write_json(std::ostream& out, const std::vector<entry>& tasks,
                              std::uint64_t untracked) {
  const auto write_id_or_null = [&out](std::uint64_t id) {
    if (id != 0) {
      out << id;
    } else {
      out << "null";
    }
  };
  out << "{\"untracked\":" << untracked << ",\"tasks\":[";
  bool first = true;
  for (const entry& e : tasks) {
    out << (first ? "" : ",") << "{\"id\":" << e.id << ",\"name\":";
    first = false;
    write_json_string(out, e.name);
    out << ",\"parent\":";
    write_id_or_null(e.parent_id);
    out << ",\"group\":";
    write_id_or_null(e.group_id);
    out << ",\"in_group\":" << (e.group_id != 0 ? "true" : "false") << ",\"state\":";
    write_json_string(out, e.state);
    out << ",\"awaiting\":";
    write_id_or_null(e.awaiting_id);
    out << '}';
  }
  // Each group once, with its owner (the `parent` of its members) and members in id order.
  out << "],\"groups\":[";
  std::vector<std::uint64_t> order;
  std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::vector<std::uint64_t>>> groups;
  for (const entry& e : tasks) {
    if (e.group_id == 0) {
      continue;
    }
    auto [found, fresh] = groups.try_emplace(e.group_id);
    if (fresh) {
      order.push_back(e.group_id);
      found->second.first = e.parent_id;
    }
    found->second.second.push_back(e.id);
  }
  std::sort(order.begin(), order.end());
  first = true;
  for (const std::uint64_t id : order) {
    const auto& [owner, member_ids] = groups[id];
    out << (first ? "" : ",") << "{\"id\":" << id << ",\"owner\":";
    first = false;
    write_id_or_null(owner);
    out << ",\"members\":[";
    for (std::size_t i = 0; i < member_ids.size(); ++i) {
      out << (i == 0 ? "" : ",") << member_ids[i];
    }
    out << "]}";
  }
  out << "]}\n";
}

}  // namespace corun::detail
