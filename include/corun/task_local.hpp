/// \file
/// `task_local<T>`: a value per task, inherited by the tasks it spawns (anyio / contextvars).
#pragma once

#include "corun/detail/task_node.hpp"

#include <memory>
#include <stdexcept>
#include <utility>

namespace corun {

namespace detail {
/// The value stored for `key` in the current task, or null (no task, or never set).
[[nodiscard]] const void* find_task_local(const void* key) noexcept;
/// Stores `value` for `key` in the current task's locals, copying them first if they are shared
/// with a spawned task (so the spawned task keeps the values it started with).
void set_task_local(const void* key, std::shared_ptr<const void> value);
}  // namespace detail

/// A variable with one value per task. A task spawned inside a task (`spawn`, a group's
/// `spawn`, `runtime::spawn` called from a task) starts with a copy of its **spawner's** values;
/// later `set`s on either side are not seen by the other. A task awaited inline
/// (`co_await some_task()`) is part of the awaiting task and shares its values. Outside a task,
/// and in a task that never set it (nor inherited a value), `get()` returns the default.
///
/// The object is the key: it must outlive every task that uses it (make it a global or a
/// static). Spawning costs nothing extra while no task-local was ever set in the spawner, and
/// one atomic increment otherwise (the values are shared until either side sets one).
template <class T>
class task_local {
 public:
  explicit task_local(T default_value = T()) : m_default(std::move(default_value)) {}
  task_local(const task_local&) = delete;
  task_local& operator=(const task_local&) = delete;
  ~task_local() = default;

  /// The current task's value. The reference is valid until this task next sets this variable
  /// (or ends); copy it to keep it longer.
  [[nodiscard]] const T& get() const noexcept {
    const void* value = detail::find_task_local(this);
    return value != nullptr ? *static_cast<const T*>(value) : m_default;
  }
  /// Sets the current task's value. Throws `std::logic_error` outside a corun task.
  void set(T value) { detail::set_task_local(this, std::make_shared<const T>(std::move(value))); }

 private:
  T m_default;
};

}  // namespace corun
