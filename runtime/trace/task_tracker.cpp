// The live-task registry and the task dump (task_tracker.hpp).
#include "trace/task_tracker.hpp"

#include "corun/detail/task_node.hpp"

#include "scheduler/task_extras.hpp"

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
  std::vector<entry> out;
  for (shard& s : m_shards) {
    lock(s);
  }
  // Every tracked task stays alive while we hold the locks: its completion unlinks it first.
  try {
    std::unordered_set<const task_node*> live;
    for (shard& s : m_shards) {
      for (const task_node* n = s.head; n != nullptr;
           n = n->m_extras.load(std::memory_order_relaxed)->live_next) {
        live.insert(n);
      }
    }
    for (const task_node* n : live) {
      entry e{n->id(), n->name(), 0, false, {}, 0};
      const scope_node* parent = n->m_parent;
      if (parent != nullptr && parent->kind() == scope_kind::group) {
        e.in_group = true;
        parent = parent->m_parent;
      }
      if (parent != nullptr && parent->kind() == scope_kind::task) {
        e.parent_id = static_cast<const task_node*>(parent)->id();
      }
      // Relaxed: a snapshot for people; the fields may be changing while we read.
      const auto kind = static_cast<wait_kind>(n->m_wait.load(std::memory_order_relaxed));
      e.state = describe_wait(kind);
      if (kind == wait_kind::join) {
        const task_node* awaited = n->m_awaiting.load(std::memory_order_relaxed);
        if (awaited != nullptr && live.count(awaited) != 0) {
          e.awaiting_id = awaited->id();
        }
      }
      out.push_back(std::move(e));
    }
  } catch (...) {
    for (shard& s : m_shards) {
      unlock(s);
    }
    throw;
  }
  for (shard& s : m_shards) {
    unlock(s);
  }
  return out;
}

void task_tracker::write_text(std::ostream& out, const std::vector<entry>& tasks,
                              std::uint64_t untracked) {
  std::unordered_map<std::uint64_t, std::vector<const entry*>> children;
  std::unordered_set<std::uint64_t> ids;
  for (const entry& e : tasks) {
    ids.insert(e.id);
  }
  std::vector<const entry*> roots;
  for (const entry& e : tasks) {
    if (e.parent_id != 0 && ids.count(e.parent_id) != 0) {
      children[e.parent_id].push_back(&e);
    } else {
      roots.push_back(&e);
    }
  }
  out << tasks.size() << " live task" << (tasks.size() == 1 ? "" : "s");
  if (untracked != 0) {
    out << " (and " << untracked << " untracked for lack of memory)";
  }
  out << '\n';
  // Depth first with an explicit stack: trees may be deeper than the thread's stack allows.
  std::vector<std::pair<const entry*, std::size_t>> stack;
  for (auto it = roots.rbegin(); it != roots.rend(); ++it) {
    stack.emplace_back(*it, 0);
  }
  while (!stack.empty()) {
    const auto [e, depth] = stack.back();
    stack.pop_back();
    out << std::string(2 * depth, ' ') << "task #" << e->id;
    if (!e->name.empty()) {
      out << " '" << e->name << "'";
    }
    out << " [" << e->state;
    if (e->awaiting_id != 0) {
      out << " task #" << e->awaiting_id;
    }
    out << ']';
    if (e->in_group) {
      out << " (in a group)";
    }
    out << '\n';
    if (auto found = children.find(e->id); found != children.end()) {
      for (auto it = found->second.rbegin(); it != found->second.rend(); ++it) {
        stack.emplace_back(*it, depth + 1);
      }
    }
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
  out << "{\"untracked\":" << untracked << ",\"tasks\":[";
  bool first = true;
  for (const entry& e : tasks) {
    out << (first ? "" : ",") << "{\"id\":" << e.id << ",\"name\":";
    first = false;
    write_json_string(out, e.name);
    out << ",\"parent\":";
    if (e.parent_id != 0) {
      out << e.parent_id;
    } else {
      out << "null";
    }
    out << ",\"in_group\":" << (e.in_group ? "true" : "false") << ",\"state\":";
    write_json_string(out, e.state);
    out << ",\"awaiting\":";
    if (e.awaiting_id != 0) {
      out << e.awaiting_id;
    } else {
      out << "null";
    }
    out << '}';
  }
  out << "]}\n";
}

}  // namespace corun::detail
