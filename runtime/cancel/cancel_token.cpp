// Tokens and sources (include/corun/cancel.hpp).
//
// A token keeps its node alive with the node's own reference count: a task's (`m_state`
// references, like a task_handle), a group's or a root's (`retain_for_report`), or a source's.
// A source node keeps its parent alive, so a token's chain is always safe to walk.
#include "corun/cancel.hpp"

#include "corun/detail/task_node.hpp"

#include "scheduler/task_extras.hpp"

#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>

namespace corun::detail {

namespace {

/// The node of a `cancel_source`: no tasks are its children, only derived sources and tokens.
class source_scope final : public scope_node {
 public:
  explicit source_scope(scope_node* parent) noexcept : scope_node(scope_kind::source, parent) {
    if (parent != nullptr) {
      retain_scope(*parent);
    }
  }

  void adopt_failure(std::exception_ptr /*error*/, task_node& /*child*/) noexcept override {
    std::terminate();  // no task is ever a child of a source
  }
  [[nodiscard]] resumption child_completed(bool /*child_failed*/) noexcept override {
    std::terminate();  // as above
  }
  void retain_for_report() override { m_refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept override {
    // acq_rel: the last release sees every use of the node.
    if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      scope_node* parent = m_parent;
      delete this;
      if (parent != nullptr) {
        release_scope(*parent);
      }
    }
  }

 private:
  ~source_scope() override = default;

  // Relaxed increments: a new reference is made from an existing one.
  std::atomic<std::uint32_t> m_refs{1};
};

}  // namespace

void retain_scope(scope_node& scope) noexcept {
  if (scope.kind() == scope_kind::task) {
    static_cast<task_node&>(scope).add_ref();
  } else {
    // Groups, roots and sources count references in a plain counter that cannot fail.
    scope.retain_for_report();
  }
}

void release_scope(scope_node& scope) noexcept { scope.release(); }

scope_node* create_source_scope(scope_node* parent) { return new source_scope(parent); }

}  // namespace corun::detail

namespace corun {

std::optional<std::string> cancel_token::reason() const {
  for (const detail::scope_node* s = m_scope; s != nullptr; s = s->m_parent) {
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
