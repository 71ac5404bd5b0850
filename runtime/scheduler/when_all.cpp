#include "corun/when_all.hpp"

#include "corun/detail/task_node.hpp"

#include <string>

namespace corun::detail {

void settle_when_all(std::vector<std::exception_ptr> failures, bool any_cancelled,
                     std::size_t count) {
  if (!failures.empty()) {
    const std::size_t failed = failures.size();
    throw exception_group("corun: when_all: " + std::to_string(failed) + " of " +
                              std::to_string(count) + " tasks failed",
                          std::move(failures));
  }
  if (any_cancelled) {
    task_node& self = *tl_thread.current;
    if (cancel_requested(self)) {
      throw_cancelled(self);
    }
    // Nobody cancelled us or the group, yet a child ended cancelled: it threw `cancelled` on
    // its own. Report it like a failure rather than inventing a value for it.
    throw exception_group("corun: when_all: a task ended cancelled",
                          {std::make_exception_ptr(cancelled("a when_all task ended cancelled"))});
  }
}

}  // namespace corun::detail
