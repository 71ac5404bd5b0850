/// \file
/// `exception_group`: several failures reported as one (Python's `ExceptionGroup`).
#pragma once

#include <concepts>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace corun {

namespace detail {

/// A borrowed `bool(const std::exception_ptr&)` callable (a minimal `function_ref`): lets the
/// templates of `exception_group` and `catch_each` hand their predicate to the non-template
/// recursion in the compiled library without allocating, so the headers stay small.
///
/// Lifetime: refers to the (non-const) function object it was made from, which must outlive it;
/// it is only ever a parameter.
class exception_predicate_ref {
 public:
  template <class Predicate>
    requires(std::is_class_v<Predicate> && !std::is_const_v<Predicate> &&
             !std::same_as<Predicate, exception_predicate_ref>)
  explicit exception_predicate_ref(Predicate& predicate) noexcept
      : m_object(std::addressof(predicate)),
        m_call([](void* object, const std::exception_ptr& error) -> bool {
          return (*static_cast<Predicate*>(object))(error);
        }) {}

  bool operator()(const std::exception_ptr& error) const { return m_call(m_object, error); }

 private:
  void* m_object;  // a `Predicate*`, cast back by `m_call`
  bool (*m_call)(void*, const std::exception_ptr&);
};

}  // namespace detail

/// Several exceptions raised by concurrent children, reported together.
///
/// Thrown by `when_all`, and by a task whose unobserved children failed more than once. Members
/// keep their nesting (`exceptions()`); `leaves()` flattens nested groups; `split()` divides a
/// group by exception type or by a predicate, keeping the nesting; `catch_each()`
/// (corun/catch_each.hpp) handles the leaves one by one, like Python's `except*`.
///
/// A group is immutable: every member function is const and safe to call from several threads at
/// once. Copies share their state, so copying (and throwing) a group never throws.
class exception_group : public std::exception {
 public:
  /// (matching, rest), each side `std::nullopt` when it holds nothing; see `split()`.
  using split_result = std::pair<std::optional<exception_group>, std::optional<exception_group>>;

  /// A group of `exceptions` (which may themselves be groups) described by `message`.
  exception_group(std::string message, std::vector<std::exception_ptr> exceptions);

  /// The direct members, nested groups kept as they are.
  [[nodiscard]] const std::vector<std::exception_ptr>& exceptions() const noexcept {
    return m_state->exceptions;
  }
  /// Every non-group exception, depth first, nested groups flattened.
  [[nodiscard]] std::vector<std::exception_ptr> leaves() const;
  /// The message followed by one line per member.
  [[nodiscard]] const char* what() const noexcept override { return m_state->what.c_str(); }
  /// The message given to the constructor, without the member lines of `what()`.
  [[nodiscard]] const std::string& message() const noexcept { return m_state->message; }

  /// Divides the group into the exceptions that are (or derive from) `E` and the rest, like
  /// Python's `BaseExceptionGroup.split(type)`: returns (matching, rest).
  ///
  /// - Nesting is kept: a nested group is split recursively and appears on each side that got
  ///   some of its members, as a group with its original message. A nested group none of whose
  ///   members went to the other side is kept as it is (same object, same dynamic type), and so
  ///   is this group (as a copy); a side with no members is dropped, and at the top it is
  ///   `std::nullopt`.
  /// - Groups themselves are tested against `E` only when `E` is `exception_group` or derived from
  ///   it: `split<exception_group>()` matches the whole group, as `split(ExceptionGroup)` does in
  ///   Python. For a base of `exception_group` (`std::exception`) the leaves decide: a group can
  ///   hold `corun::cancelled`, which is not a `std::exception`, so treating the group as a
  ///   `std::exception` would put cancellations on the matching side. Python reaches the same
  ///   answer through its types: a group holding non-`Exception`s is a `BaseExceptionGroup`, which
  ///   is not an `Exception`. When every leaf is a `std::exception` the result is the same.
  /// - A leaf matches when `catch (const E&)` would catch it, so any thrown type works, e.g.
  ///   `split<corun::cancelled>()`.
  ///
  /// A side that lost members is a new, plain `exception_group` with the message of the group it
  /// came from, sharing the member exceptions (not copies). Each leaf is rethrown to test it.
  template <class E>
  [[nodiscard]] split_result split() const {
    if constexpr (std::is_same_v<E, exception_group>) {
      return {*this, std::nullopt};
    } else if constexpr (std::derived_from<E, exception_group>) {
      if (dynamic_cast<const E*>(this) != nullptr) {
        return {*this, std::nullopt};
      }
    }
    auto is_e = [](const std::exception_ptr& error) -> bool {
      if constexpr (std::derived_from<E, exception_group>) {
        return catches<E>(error);
      } else {
        try {
          std::rethrow_exception(error);
        } catch (const exception_group&) {
          return false;  // split by its members instead
        } catch (const E&) {
          return true;
        } catch (...) {
          return false;
        }
      }
    };
    return split_members(detail::exception_predicate_ref(is_e));
  }

  /// Divides the group by `predicate`, like Python's `BaseExceptionGroup.split(callable)`:
  /// returns (matching, rest) where matching holds the exceptions for which `predicate` returned
  /// true.
  ///
  /// As in Python the predicate sees groups too, before their members: first this group (as an
  /// `exception_group`; true means the whole group matches), then each nested group (true takes it
  /// whole to the matching side; false splits it by its members), then each leaf. Nesting and
  /// `std::nullopt` sides are as for `split<E>()`. The predicate runs on the calling thread; what
  /// it throws leaves `split`.
  template <class Predicate>
    requires std::is_invocable_r_v<bool, Predicate&, const std::exception_ptr&>
  [[nodiscard]] split_result split(Predicate&& predicate) const {
    if (predicate(std::make_exception_ptr(*this))) {
      return {*this, std::nullopt};
    }
    // Through a lambda, so that functions (not only function objects) can be referred to.
    auto matches = [&predicate](const std::exception_ptr& error) -> bool {
      return static_cast<bool>(predicate(error));
    };
    return split_members(detail::exception_predicate_ref(matches));
  }

 private:
  struct state {
    std::string message;
    std::vector<std::exception_ptr> exceptions;
    std::string what;
  };

  /// Splits the members (not the group itself) by `matches`, which is also asked about nested
  /// groups before they are split.
  [[nodiscard]] split_result split_members(detail::exception_predicate_ref matches) const;

  /// Whether `catch (const E&)` catches what `error` holds.
  template <class E>
  static bool catches(const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const E&) {
      return true;
    } catch (...) {
      return false;
    }
  }

  // Shared so that copying the exception object cannot throw.
  std::shared_ptr<const state> m_state;
};

/// Describes an exception for messages: `what()` of a `std::exception`, the message of a
/// `corun::cancelled`, or "unknown exception".
[[nodiscard]] std::string describe_exception(const std::exception_ptr& error);

}  // namespace corun
