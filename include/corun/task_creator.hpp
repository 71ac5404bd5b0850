/// \file
/// `task_creator`: anything that starts tasks (frequenz.core.asyncio's `TaskCreator` protocol),
/// and `current_spawner()`, the task creator that makes children of the running task.
#pragma once

#include "corun/join_handle.hpp"
#include "corun/spawn.hpp"
#include "corun/spawn_options.hpp"
#include "corun/task.hpp"

#include "corun/detail/task_node.hpp"

#include <concepts>
#include <stdexcept>
#include <utility>

namespace corun {

/// Something that starts a `task<T>` and hands back its `join_handle<T>`:
/// `creator.spawn(std::move(t), options)`. Where the task lands in the task tree is the
/// creator's business: `runtime` makes a root task, `task_group`, `persistent_task_group` and
/// `service_base` make a member of the group, `current_spawner()` a child of the running task.
///
/// A concept cannot quantify over every `T`, so it checks `T = void`; every creator of corun
/// has the same template for all `T`. `persistent_task_group` and `service_base` take a creator
/// to say where they live (see `persistent_task_group`'s constructor).
template <class Creator>
concept task_creator = requires(Creator& creator, task<void> t, spawn_options options) {
  { creator.spawn(std::move(t), std::move(options)) } -> std::same_as<join_handle<void>>;
};

/// The task creator returned by `current_spawner()`: its `spawn` makes a child of the task that
/// called `current_spawner()` (`corun::spawn`), which therefore does not complete before it.
///
/// Threading: a task can only spawn its own children, so `spawn` must be called by that same
/// task (else `std::logic_error`). Copyable; holds no reference on the task, so do not keep it
/// past the task's body.
class current_task_spawner {
 public:
  /// `corun::spawn(std::move(t), options)`, from the task that made this object.
  template <class T>
  join_handle<T> spawn(task<T> t, spawn_options options = {}) const {
    if (detail::this_thread_state().current != m_task) {
      throw std::logic_error(
          "corun: a current_spawner() was used by another task than the one that called "
          "current_spawner() (a task can only spawn its own children)");
    }
    return corun::spawn(std::move(t), std::move(options));
  }

 private:
  friend current_task_spawner current_spawner();
  explicit current_task_spawner(detail::task_node& task) noexcept : m_task(&task) {}

  detail::task_node* m_task;
};

/// The task creator of the running task (see `current_task_spawner`): what frequenz spells
/// `task_creator=asyncio`, the default of `persistent_task_group` and `service_base`. Throws
/// `std::logic_error` outside a corun task (pass a `runtime` as the creator there).
[[nodiscard]] inline current_task_spawner current_spawner() {
  return current_task_spawner(detail::current_task_for("corun::current_spawner"));
}

}  // namespace corun
