/// \file
/// `catch_each`: handle the exceptions of an `exception_group` one by one, like Python's `except*`.
#pragma once

#include "corun/exception_group.hpp"

#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <tuple>
#include <type_traits>

namespace corun {

namespace detail {

/// The parameters of a function signature, for deducing which exception a handler takes.
template <class Signature>
struct signature_parameters {
  static constexpr bool known = false;
};

template <class R, class... Args>
struct signature_parameters<R(Args...)> {
  static constexpr bool known = true;
  static constexpr std::size_t arity = sizeof...(Args);
  using first = std::tuple_element_t<0, std::tuple<Args..., void>>;
};
template <class R, class... Args>
struct signature_parameters<R(Args...) noexcept> : signature_parameters<R(Args...)> {};
template <class R, class C, class... Args>
struct signature_parameters<R (C::*)(Args...)> : signature_parameters<R(Args...)> {};
template <class R, class C, class... Args>
struct signature_parameters<R (C::*)(Args...) const> : signature_parameters<R(Args...)> {};
template <class R, class C, class... Args>
struct signature_parameters<R (C::*)(Args...) noexcept> : signature_parameters<R(Args...)> {};
template <class R, class C, class... Args>
struct signature_parameters<R (C::*)(Args...) const noexcept> : signature_parameters<R(Args...)> {};

/// The parameters of a handler: a function, a function pointer, or a class with one
/// non-template `operator()` (a lambda whose parameter is not `auto`).
template <class Handler>
struct handler_parameters : signature_parameters<std::remove_pointer_t<Handler>> {};

template <class Handler>
  requires requires { &Handler::operator(); }
struct handler_parameters<Handler> : signature_parameters<decltype(&Handler::operator())> {};

/// The exception type a handler takes.
template <class Handler>
using handler_exception_t =
    std::remove_cvref_t<typename handler_parameters<std::remove_cvref_t<Handler>>::first>;

/// Compile-time checks of one `catch_each` handler; each failure names the mistake. Returns
/// whether the handler is valid, so that `catch_each` does not go on to call an invalid one.
template <class Handler>
consteval bool check_handler() {
  using parameters = handler_parameters<std::remove_cvref_t<Handler>>;
  if constexpr (!parameters::known) {
    static_assert(parameters::known,
                  "catch_each: cannot tell which exception this handler takes. Pass a function or "
                  "a lambda with one parameter of a concrete type, e.g. "
                  "[](const std::runtime_error& e) {...} (not `auto`, not an overloaded function "
                  "object).");
    return false;
  } else if constexpr (parameters::arity != 1) {
    static_assert(parameters::arity == 1,
                  "catch_each: a handler must take exactly one parameter, the exception: "
                  "[](const E& e) {...}.");
    return false;
  } else {
    using parameter = typename parameters::first;
    constexpr bool by_const_ref_or_value = !std::is_rvalue_reference_v<parameter> &&
                                           (!std::is_lvalue_reference_v<parameter> ||
                                            std::is_const_v<std::remove_reference_t<parameter>>);
    static_assert(by_const_ref_or_value,
                  "catch_each: take the exception as `const E&` (or by value): the exceptions of "
                  "a group are shared by every copy of it and must not be modified.");
    constexpr bool not_a_group =
        !std::derived_from<std::remove_cvref_t<parameter>, exception_group>;
    static_assert(not_a_group,
                  "catch_each: handlers are given the leaves of the group, never groups, so a "
                  "handler taking an exception_group would never run. Use split<E>() to work "
                  "with sub-groups.");
    return by_const_ref_or_value && not_a_group;
  }
}

/// Calls `handler` with `leaf` if `catch (const E&)` catches it (E being what `handler` takes).
/// Returns whether it did. The handler runs inside that catch block, so `throw;` rethrows `leaf`.
template <class Handler>
bool try_handler(Handler& handler, const std::exception_ptr& leaf) {
  try {
    std::rethrow_exception(leaf);
  } catch (const handler_exception_t<Handler>& error) {
    static_cast<void>(std::invoke(handler, error));
    return true;
  } catch (...) {
    return false;
  }
}

/// The non-template part of `catch_each` (runtime/errors/exception_group.cpp): offers each leaf of
/// `group`, depth first, to `handle_leaf`, then throws what is left, as `catch_each` describes.
void catch_each_leaves(const exception_group& group, exception_predicate_ref handle_leaf);

}  // namespace detail

/// Handles the exceptions of `group` one by one, like Python's `except*` clauses.
///
/// Each leaf of the group (depth first, as `leaves()` lists them) goes to the first handler, in
/// argument order, whose parameter type catches it (`catch (const E&)` for a handler taking
/// `const E&` or `E`; so a handler taking `const std::exception&` takes every leaf derived from
/// it, and one taking `const corun::cancelled&` takes cancellations). Each handler is a function,
/// function pointer or lambda with exactly one parameter of a concrete type; its result is
/// ignored. It runs inside a catch block for the leaf, so `std::current_exception()` is the leaf.
/// Handlers see leaves only, never groups.
///
/// Afterwards, as Python does at the end of its `except*` clauses:
/// - every leaf was handled and no handler threw: returns normally;
/// - leaves no handler took remain (and no handler threw): throws the rest of the group, with the
///   nesting and messages kept as `split()` keeps them (the group itself if no leaf was taken);
/// - a handler threw: throws `exception_group("corun: catch_each: a handler threw", members)`
///   whose members are what the handlers threw, in leaf order, followed by the rest of the group
///   (if any) as one nested group. Python raises `ExceptionGroup("", raised + [rest])` in this
///   case; so, as there, `catch_each` only ever throws an `exception_group`, and nothing a handler
///   throws is lost. A handler that rethrows its leaf with `throw;` (a bare `raise` in Python)
///   leaves the leaf in the rest, in its place, instead of adding it as a new exception; this is
///   recognised by the identity of the exception object, which GCC and Clang keep on `throw;`.
///
/// Handlers run on the calling thread, one at a time; they may refer to locals of the caller.
template <class... Handlers>
void catch_each(const exception_group& group, Handlers&&... handlers) {
  static_assert(sizeof...(Handlers) > 0, "catch_each: give at least one handler");
  // Invalid handlers stop here, each with its own static_assert above, instead of also producing
  // errors from deep inside the calls below.
  if constexpr (sizeof...(Handlers) > 0 && (detail::check_handler<Handlers>() && ...)) {
    auto handle_leaf = [&](const std::exception_ptr& leaf) -> bool {
      return (detail::try_handler(handlers, leaf) || ...);
    };
    detail::catch_each_leaves(group, detail::exception_predicate_ref(handle_leaf));
  }
}

}  // namespace corun
