// Tokens and sources (include/corun/cancel.hpp).
//
// A token state holds one reference on its node and on every scope above it up to the first
// shield, each with that scope's own count: a task's (`m_state` references, like a
// task_handle), a group's or a root's (`retain_for_report`), or a source's. They are taken
// when the state is made, from a thread on which the whole chain is alive (the running task,
// or a new source under a token that holds its own chain), and dropped with the last copy.
#include "corun/cancel.hpp"

#include "corun/detail/task_node.hpp"

#include "scheduler/task_extras.hpp"

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>

namespace corun::detail {

namespace {

/// The node of a `cancel_source`: no tasks are its children, only derived sources and tokens.
/// Its parent is kept alive by the tokens of this source (they hold the whole chain).
class source_scope final : public scope_node {
 public:
  explicit source_scope(scope_node* parent) noexcept
      : scope_node(scope_kind::source, parent, scope_ops_of<source_scope>) {}

  void adopt_failure(const std::exception_ptr& /*error*/, task_node& /*child*/) noexcept {
    std::terminate();  // no task is ever a child of a source
  }
  [[nodiscard]] resumption child_completed(bool /*child_failed*/) noexcept {
    std::terminate();  // as above
  }
  void retain_for_report() { m_refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    // acq_rel: the last release sees every use of the node.
    if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete this;
    }
  }

 private:
  ~source_scope() = default;

  // Only token states hold references; the one made with the node takes the first. Relaxed
  // increments: a new reference is made from an existing one.
  std::atomic<std::uint32_t> m_refs{0};
};

void retain_scope(scope_node& scope) noexcept {
  if (scope.kind() == scope_kind::task) {
    static_cast<task_node&>(scope).add_ref();
  } else {
    // Groups, roots and sources count references in a plain counter that cannot fail.
    scope.retain_for_report();
  }
}

void retain_chain(scope_node& scope) noexcept {
  for (scope_node* s = &scope; s != nullptr; s = s->m_parent) {
    retain_scope(*s);
    if (s->m_shield) {
      break;  // walks stop here
    }
  }
}

}  // namespace

token_state* make_token_state(scope_node& scope) {
  auto* state = new token_state{{1}, &scope};
  retain_chain(scope);
  return state;
}

void release_token_state(token_state* state) noexcept {
  // acq_rel: the last release sees every use of the state.
  if (state == nullptr || state->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) {
    return;
  }
  scope_node* s = state->scope;
  delete state;
  while (s != nullptr) {
    scope_node* parent = s->m_parent;  // read before releasing: the release may free `s`
    const bool last = s->m_shield;
    s->release();
    if (last) {
      break;
    }
    s = parent;
  }
}

token_state* make_source_token(scope_node* parent) {
  std::unique_ptr<token_state> state(new token_state{{1}, nullptr});
  state->scope = new source_scope(parent);  // the last allocation: nothing can fail after it
  retain_chain(*state->scope);
  return state.release();
}

}  // namespace corun::detail

namespace corun {

std::optional<std::string> cancel_token::reason() const {
  for (const detail::scope_node* s = scope(); s != nullptr; s = s->m_parent) {
    if (const detail::cancel_request* request = s->own_cancel()) {
      return request->message;
    }
    if (s->m_shield) {
      break;
    }
  }
  return std::nullopt;
}

}  // namespace corun
