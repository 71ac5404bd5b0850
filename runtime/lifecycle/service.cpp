// service_base and with_service. The service's tasks, their ownership and their failures are
// its persistent_task_group's (persistent_task_group.cpp); this file adds `main` and the rule by
// which with_service combines the body's outcome with stop's.
#include "corun/service.hpp"

#include "corun/cancelled.hpp"
#include "corun/exception_group.hpp"

#include <cstdio>
#include <exception>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace corun {

service_base::~service_base() {
#ifndef NDEBUG
  if (m_group.is_running()) {
    std::fprintf(stderr,
                 "corun: service '%s' destroyed while running: its tasks are cancelled and end "
                 "after the object is gone (co_await stop() before destroying a service)\n",
                 m_group.unique_id().c_str());
  }
#endif
}

void service_base::start() {
  if (m_group.is_running()) {
    return;
  }
  spawn_options options;
  options.name = "main";
  static_cast<void>(m_group.spawn(main(), std::move(options)));
}

std::ostream& operator<<(std::ostream& out, const service_base& svc) {
  return out << "service<unique_id=" << svc.unique_id()
             << ", running=" << (svc.is_running() ? "true" : "false")
             << ", tasks=" << svc.task_group().tasks().size() << ">";
}

namespace detail {

void settle_with_service(std::exception_ptr body_error, std::exception_ptr stop_error) {
  if (!stop_error) {
    if (body_error) {
      std::rethrow_exception(std::move(body_error));
    }
    return;
  }
  if (!body_error || holds_cancelled(body_error)) {
    // The caller's own cancellation (the usual reason for a cancelled body) is still pending
    // and shows at its next suspension point; the failures are what only stop can tell.
    std::rethrow_exception(std::move(stop_error));
  }
  std::vector<std::exception_ptr> members{std::move(body_error)};
  try {
    std::rethrow_exception(stop_error);
  } catch (const exception_group& group) {
    members.insert(members.end(), group.exceptions().begin(), group.exceptions().end());
  } catch (...) {
    members.push_back(std::move(stop_error));
  }
  const std::size_t failed = members.size() - 1;
  throw exception_group("corun: with_service: the body failed and " + std::to_string(failed) +
                            (failed == 1 ? " task" : " tasks") + " of the service failed",
                        std::move(members));
}

}  // namespace detail

}  // namespace corun
