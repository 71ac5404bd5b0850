// exception_group: construction, flattening, split and catch_each.
//
// Split (Python's BaseExceptionGroup.split, recursive over the members of a group):
//  1. The templates in the header test the group itself first (split<E>: only when E is a group
//     type; split(predicate): always) and return (whole group, nullopt) on a match.
//  2. Each member is then asked, in order: a member the predicate matches goes whole to the
//     matching side (for split<E> this is never a group unless E is a group type); a leaf that
//     does not match goes to the rest; a nested group that does not match is split by its own
//     members (step 2 again).
//  3. A nested group lands on each side that got some of its members. If none of its members went
//     to the other side, the original exception_ptr is kept (identity and dynamic type
//     preserved); otherwise a new exception_group with the nested group's message is built from
//     that side's members. A side with no members is dropped.
//  4. At the top, the same rule gives each half of the result: nullopt, the group itself, or a
//     new group with its message.
//
// catch_each (Python's except*) is split without testing groups, where "matches" means "a handler
// took this leaf": a leaf whose handler returned or threw something new is handled; a leaf no
// handler took, or that its handler rethrew with `throw;`, stays in the rest. What handlers threw
// is gathered in leaf order and thrown with the rest in one group.
#include "corun/exception_group.hpp"

#include "corun/cancelled.hpp"
#include "corun/catch_each.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

/// The group `error` holds, or nullopt for a leaf. Copying a group cannot throw.
std::optional<exception_group> as_group(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const exception_group& group) {
    return group;
  } catch (...) {
    return std::nullopt;
  }
}

/// The members of one group divided in two (steps 2 and 3 of the protocol).
struct split_members_result {
  std::vector<std::exception_ptr> matching;
  std::vector<std::exception_ptr> rest;
};

/// Adds to `side` what a nested `group` (held by `original`) contributes to it: nothing, the
/// original, or a new group of `members` with the nested group's message.
void add_nested_side(std::vector<std::exception_ptr>& side, const std::exception_ptr& original,
                     const exception_group& group, std::vector<std::exception_ptr> members,
                     bool other_side_empty) {
  if (members.empty()) {
    return;
  }
  if (other_side_empty) {
    side.push_back(original);
  } else {
    side.push_back(std::make_exception_ptr(exception_group(group.message(), std::move(members))));
  }
}

split_members_result split_members(const std::vector<std::exception_ptr>& members,
                                   detail::exception_predicate_ref matches, bool test_groups) {
  split_members_result out;
  for (const std::exception_ptr& member : members) {
    const std::optional<exception_group> nested = as_group(member);
    if ((!nested || test_groups) && matches(member)) {
      out.matching.push_back(member);
    } else if (!nested) {
      out.rest.push_back(member);
    } else {
      split_members_result inner = split_members(nested->exceptions(), matches, test_groups);
      const bool no_matching = inner.matching.empty();
      const bool no_rest = inner.rest.empty();
      add_nested_side(out.matching, member, *nested, std::move(inner.matching), no_rest);
      add_nested_side(out.rest, member, *nested, std::move(inner.rest), no_matching);
    }
  }
  return out;
}

/// Step 4: one half of the result of splitting `group`.
std::optional<exception_group> top_side(const exception_group& group,
                                        std::vector<std::exception_ptr> members,
                                        bool other_side_empty) {
  if (members.empty()) {
    return std::nullopt;
  }
  if (other_side_empty) {
    return group;
  }
  return exception_group(group.message(), std::move(members));
}

exception_group::split_result split_group(const exception_group& group,
                                          detail::exception_predicate_ref matches,
                                          bool test_groups) {
  split_members_result parts = split_members(group.exceptions(), matches, test_groups);
  const bool no_matching = parts.matching.empty();
  const bool no_rest = parts.rest.empty();
  return {top_side(group, std::move(parts.matching), no_rest),
          top_side(group, std::move(parts.rest), no_matching)};
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

exception_group::split_result exception_group::split_members(
    detail::exception_predicate_ref matches) const {
  return split_group(*this, matches, /*test_groups=*/true);
}

void detail::catch_each_leaves(const exception_group& group,
                               detail::exception_predicate_ref handle_leaf) {
  std::vector<std::exception_ptr> raised;
  auto handled = [&](const std::exception_ptr& leaf) -> bool {
    try {
      return handle_leaf(leaf);
    } catch (...) {
      std::exception_ptr error = std::current_exception();
      if (error == leaf) {
        return false;  // `throw;` in the handler: the leaf stays where it was, unhandled
      }
      raised.push_back(std::move(error));
      return true;
    }
  };
  std::optional<exception_group> rest =
      split_group(group, detail::exception_predicate_ref(handled), /*test_groups=*/false).second;
  if (raised.empty()) {
    if (rest) {
      throw *rest;
    }
    return;
  }
  if (rest) {
    raised.push_back(std::make_exception_ptr(*std::move(rest)));
  }
  throw exception_group("corun: catch_each: a handler threw", std::move(raised));
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
