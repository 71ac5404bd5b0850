// Task-local values (include/corun/task_local.hpp).
//
// A task points to an immutable-while-shared list of (key, value) pairs. Spawning shares the
// spawner's list with the child (one reference more); setting a value in a task whose list is
// shared first copies the list, so each side keeps what it had. Only the task itself reads or
// writes its list, so the list needs no lock: the reference count alone is shared.
#include "corun/task_local.hpp"

#include "corun/detail/task_node.hpp"

#include "scheduler/task_extras.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

namespace corun::detail {

struct task_locals {
  struct entry {
    const void* key;
    std::shared_ptr<const void> value;
  };
  std::atomic<std::uint32_t> refs{1};
  std::vector<entry> entries;
};

task_locals* share_task_locals(task_locals* locals) noexcept {
  if (locals != nullptr) {
    // Relaxed: the caller holds a reference, so the list cannot go away meanwhile.
    locals->refs.fetch_add(1, std::memory_order_relaxed);
  }
  return locals;
}

void release_task_locals(task_locals* locals) noexcept {
  // acq_rel: the last owner sees every use of the list before deleting it.
  if (locals != nullptr && locals->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    delete locals;
  }
}

const void* find_task_local(const void* key) noexcept {
  const task_node* self = tl_thread.current;
  if (self == nullptr || self->m_locals == nullptr) {
    return nullptr;
  }
  for (const task_locals::entry& e : self->m_locals->entries) {
    if (e.key == key) {
      return e.value.get();
    }
  }
  return nullptr;
}

void set_task_local(const void* key, std::shared_ptr<const void> value) {
  task_node* self = tl_thread.current;
  if (self == nullptr) {
    throw std::logic_error("corun: task_local::set called outside a corun task");
  }
  task_locals* locals = self->m_locals;
  // Acquire: a spawned task that dropped its share is done reading the list we now change.
  if (locals == nullptr || locals->refs.load(std::memory_order_acquire) != 1) {
    auto fresh = std::make_unique<task_locals>();
    if (locals != nullptr) {
      fresh->entries = locals->entries;
    }
    release_task_locals(std::exchange(self->m_locals, fresh.release()));
    locals = self->m_locals;
  }
  for (task_locals::entry& e : locals->entries) {
    if (e.key == key) {
      e.value = std::move(value);
      return;
    }
  }
  locals->entries.push_back(task_locals::entry{key, std::move(value)});
}

}  // namespace corun::detail
