#include "corun/exception_group.hpp"

#include "corun/cancelled.hpp"

#include <string>
#include <utility>

namespace corun {

namespace {

void collect_leaves(const std::vector<std::exception_ptr>& members,
                    std::vector<std::exception_ptr>& out) {
  for (const std::exception_ptr& member : members) {
    try {
      std::rethrow_exception(member);
    } catch (const exception_group& nested) {
      collect_leaves(nested.exceptions(), out);
    } catch (...) {
      out.push_back(member);
    }
  }
}

}  // namespace

exception_group::exception_group(std::string message, std::vector<std::exception_ptr> exceptions) {
  auto s = std::make_shared<state>();
  s->what = message;
  for (std::size_t i = 0; i < exceptions.size(); ++i) {
    s->what += "\n  [" + std::to_string(i + 1) + "] " + describe_exception(exceptions[i]);
  }
  s->message = std::move(message);
  s->exceptions = std::move(exceptions);
  m_state = std::move(s);
}

std::vector<std::exception_ptr> exception_group::leaves() const {
  std::vector<std::exception_ptr> out;
  collect_leaves(m_state->exceptions, out);
  return out;
}

std::string describe_exception(const std::exception_ptr& error) {
  if (!error) {
    return "no exception";
  }
  try {
    std::rethrow_exception(error);
  } catch (const cancelled& c) {
    return c.message().empty() ? std::string("cancelled") : "cancelled: " + c.message();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace corun
