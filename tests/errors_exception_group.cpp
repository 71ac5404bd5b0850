/// \file
/// `exception_group::split` (by type and by predicate) and `catch_each` (Python's `except*`).
///
/// Results are compared through `shape()`, a one-line rendering of an exception tree that names
/// every member's type and message and every group's message, so a missing, extra, reordered or
/// re-nested member makes the comparison fail.
#include "support.hpp"

#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using corun::exception_group;
using namespace corun_test;

namespace {

/// A group type of its own, to check that `split<E>` for a group type matches nested groups by
/// their dynamic type.
class special_group : public exception_group {
 public:
  using exception_group::exception_group;
};

std::exception_ptr err(int id) { return std::make_exception_ptr(test_error(id)); }
std::exception_ptr logic(const char* what) {
  return std::make_exception_ptr(std::logic_error(what));
}
std::exception_ptr cancel(const char* message) {
  return std::make_exception_ptr(corun::cancelled(message));
}
std::exception_ptr group(std::string message, std::vector<std::exception_ptr> members) {
  return std::make_exception_ptr(exception_group(std::move(message), std::move(members)));
}

/// `E1` for `test_error(1)`, `logic(a)`, `runtime(b)`, `cancelled(m)`, `group(msg)[...]`,
/// `special(msg)[...]`.
std::string shape(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const exception_group& g) {
    std::string out = dynamic_cast<const special_group*>(&g) != nullptr ? "special(" : "group(";
    out += g.message() + ")[";
    for (std::size_t i = 0; i < g.exceptions().size(); ++i) {
      out += (i == 0 ? "" : ", ") + shape(g.exceptions()[i]);
    }
    return out + "]";
  } catch (const test_error& e) {
    return "E" + std::to_string(e.id());
  } catch (const std::logic_error& e) {
    return "logic(" + std::string(e.what()) + ")";
  } catch (const std::runtime_error& e) {
    return "runtime(" + std::string(e.what()) + ")";
  } catch (const corun::cancelled& c) {
    return "cancelled(" + c.message() + ")";
  } catch (...) {
    return "?";
  }
}

std::string shape(const std::optional<exception_group>& g) {
  return g ? shape(std::make_exception_ptr(*g)) : "none";
}

/// The shape of what `body` throws, or "returned".
template <class Body>
std::string thrown_by(Body&& body) {
  try {
    body();
  } catch (...) {
    return shape(std::current_exception());
  }
  return "returned";
}

/// top[E1, logic(a), inner[E2, runtime(b)], logics[logic(c)]]
exception_group sample() {
  return exception_group(
      "top", {err(1), logic("a"),
              group("inner", {err(2), std::make_exception_ptr(std::runtime_error("b"))}),
              group("logics", {logic("c")})});
}

bool even_test_error(const std::exception_ptr& error) {
  const int id = test_error_id(error);
  return id >= 0 && id % 2 == 0;
}

int g_pointer_handler_calls = 0;
void count_test_error(const test_error& /*error*/) { ++g_pointer_handler_calls; }

}  // namespace

TEST_SUITE("errors_exception_group") {
  TEST_CASE("exception_group: split<E> divides the leaves and keeps the nesting and messages") {
    const auto [matching, rest] = sample().split<test_error>();
    CHECK(shape(matching) == "group(top)[E1, group(inner)[E2]]");
    CHECK(shape(rest) == "group(top)[logic(a), group(inner)[runtime(b)], group(logics)[logic(c)]]");
    REQUIRE(matching);
    CHECK(matching->message() == "top");
    CHECK(std::string(matching->what()) ==
          "top\n  [1] test_error 1\n  [2] inner\n  [1] test_error 2");
  }

  TEST_CASE("exception_group: split leaves an empty side as nullopt and an untouched group whole") {
    const exception_group logics("logics", {logic("a"), group("nested", {logic("b")})});

    const auto [none, all] = logics.split<test_error>();
    CHECK_FALSE(none.has_value());
    REQUIRE(all);
    CHECK(shape(all) == "group(logics)[logic(a), group(nested)[logic(b)]]");
    // Nothing was split off: the very same members, not rebuilt copies.
    CHECK(all->exceptions() == logics.exceptions());

    const auto [everything, nothing] = logics.split<std::logic_error>();
    CHECK(shape(everything) == "group(logics)[logic(a), group(nested)[logic(b)]]");
    CHECK_FALSE(nothing.has_value());

    // Kept as is also means kept with an empty nested group, which a rebuilt group would drop.
    const auto [with_empty, no_rest] =
        exception_group("g", {err(1), group("empty", {})}).split<test_error>();
    CHECK(shape(with_empty) == "group(g)[E1, group(empty)[]]");
    CHECK_FALSE(no_rest.has_value());

    const auto [empty_matching, empty_rest] = exception_group("empty", {}).split<test_error>();
    CHECK_FALSE(empty_matching.has_value());
    CHECK_FALSE(empty_rest.has_value());
  }

  TEST_CASE("exception_group: split keeps a nested group that went wholly to one side as is") {
    const exception_group g = sample();
    const auto [matching, rest] = g.split<test_error>();
    REQUIRE(rest);
    REQUIRE(rest->exceptions().size() == 3);
    // `logics` lost nothing: the same exception object; `inner` was split: a new group.
    CHECK(rest->exceptions()[2] == g.exceptions()[3]);
    CHECK(rest->exceptions()[1] != g.exceptions()[2]);
    CHECK(rest->exceptions()[0] == g.exceptions()[1]);
  }

  TEST_CASE("exception_group: split by a base class takes every derived leaf") {
    const auto [matching, rest] = sample().split<std::runtime_error>();
    CHECK(shape(matching) == "group(top)[E1, group(inner)[E2, runtime(b)]]");
    CHECK(shape(rest) == "group(top)[logic(a), group(logics)[logic(c)]]");
  }

  TEST_CASE("exception_group: split<std::exception> separates cancellations from failures") {
    const exception_group g("mixed",
                            {err(1), cancel("stop"), group("inner", {cancel("x"), logic("l")})});
    const auto [failures, cancellations] = g.split<std::exception>();
    CHECK(shape(failures) == "group(mixed)[E1, group(inner)[logic(l)]]");
    CHECK(shape(cancellations) == "group(mixed)[cancelled(stop), group(inner)[cancelled(x)]]");
  }

  TEST_CASE(
      "exception_group: split<corun::cancelled> matches cancellations, which are not "
      "std::exception") {
    const exception_group g("mixed", {cancel("a"), err(1), group("inner", {err(2), cancel("b")}),
                                      group("only", {cancel("c")})});
    const auto [cancellations, rest] = g.split<corun::cancelled>();
    CHECK(shape(cancellations) ==
          "group(mixed)[cancelled(a), group(inner)[cancelled(b)], group(only)[cancelled(c)]]");
    CHECK(shape(rest) == "group(mixed)[E1, group(inner)[E2]]");
  }

  TEST_CASE("exception_group: split<exception_group> matches the whole group, as in Python") {
    const exception_group g = sample();
    const auto [matching, rest] = g.split<exception_group>();
    REQUIRE(matching);
    CHECK(matching->exceptions() == g.exceptions());
    CHECK(matching->message() == "top");
    CHECK_FALSE(rest.has_value());
  }

  TEST_CASE("exception_group: split by a derived group type matches nested groups of that type") {
    const exception_group g(
        "top",
        {err(1), std::make_exception_ptr(special_group("special", {err(2), err(3)})),
         group("plain", {std::make_exception_ptr(special_group("deep", {err(4)})), err(5)})});
    const auto [matching, rest] = g.split<special_group>();
    CHECK(shape(matching) ==
          "group(top)[special(special)[E2, E3], group(plain)[special(deep)[E4]]]");
    CHECK(shape(rest) == "group(top)[E1, group(plain)[E5]]");

    const auto [whole, none] = special_group("s", {err(1)}).split<special_group>();
    CHECK(shape(whole) == "group(s)[E1]");  // the result is a (sliced) exception_group
    CHECK_FALSE(none.has_value());
  }

  TEST_CASE("exception_group: split(predicate) divides the leaves by the predicate") {
    const exception_group g("ids", {err(1), err(2), group("inner", {err(3), err(4)}), logic("x")});
    const auto [even, rest] = g.split(even_test_error);
    CHECK(shape(even) == "group(ids)[E2, group(inner)[E4]]");
    CHECK(shape(rest) == "group(ids)[E1, group(inner)[E3], logic(x)]");
  }

  TEST_CASE("exception_group: split(predicate) asks about a group before its members") {
    const exception_group g("top", {err(1), group("inner", {err(2)}), err(3)});
    std::vector<std::string> asked;
    const auto [matching, rest] = g.split([&](const std::exception_ptr& error) {
      asked.push_back(shape(error));
      return false;
    });
    CHECK(asked == std::vector<std::string>{"group(top)[E1, group(inner)[E2], E3]", "E1",
                                            "group(inner)[E2]", "E2", "E3"});
    CHECK_FALSE(matching.has_value());
    CHECK(shape(rest) == "group(top)[E1, group(inner)[E2], E3]");
  }

  TEST_CASE("exception_group: split(predicate) takes a group it matches whole") {
    const auto by_message = [](const char* message) {
      return [message](const std::exception_ptr& error) {
        try {
          std::rethrow_exception(error);
        } catch (const exception_group& g) {
          return g.message() == message;
        } catch (...) {
          return false;
        }
      };
    };
    const exception_group g = sample();

    const auto [inner, rest] = g.split(by_message("inner"));
    CHECK(shape(inner) == "group(top)[group(inner)[E2, runtime(b)]]");
    CHECK(shape(rest) == "group(top)[E1, logic(a), group(logics)[logic(c)]]");
    REQUIRE(inner);
    CHECK(inner->exceptions()[0] == g.exceptions()[2]);

    const auto [whole, none] = g.split(by_message("top"));
    REQUIRE(whole);
    CHECK(whole->exceptions() == g.exceptions());
    CHECK_FALSE(none.has_value());
  }

  TEST_CASE("exception_group: catch_each calls a handler per leaf, depth first, and returns") {
    const exception_group g("top", {err(1), cancel("c"), group("inner", {logic("l"), err(2)})});
    std::vector<std::string> calls;
    CHECK(
        thrown_by([&] {
          corun::catch_each(
              g, [&](const test_error& e) { calls.push_back("E" + std::to_string(e.id())); },
              [&](const std::logic_error& e) { calls.push_back(std::string("logic ") + e.what()); },
              [&](const corun::cancelled& c) { calls.push_back("cancelled " + c.message()); });
        }) == "returned");
    CHECK(calls == std::vector<std::string>{"E1", "cancelled c", "logic l", "E2"});
  }

  TEST_CASE("exception_group: catch_each gives a leaf to the first handler that matches") {
    // A handler taking `const std::exception&` would also catch a group: it sees only leaves.
    const exception_group g("top", {err(1), group("inner", {logic("l")})});
    std::vector<std::string> calls;
    corun::catch_each(
        g, [&](const std::exception& e) { calls.push_back(std::string("std ") + e.what()); },
        [&](const test_error&) { calls.push_back("test_error"); });
    CHECK(calls == std::vector<std::string>{"std test_error 1", "std l"});

    calls.clear();
    corun::catch_each(
        g, [&](const test_error&) { calls.push_back("test_error"); },
        [&](const std::exception& e) { calls.push_back(std::string("std ") + e.what()); });
    CHECK(calls == std::vector<std::string>{"test_error", "std l"});
  }

  TEST_CASE("exception_group: catch_each rethrows the leaves no handler took as a group") {
    int handled = 0;
    CHECK(thrown_by([&] { corun::catch_each(sample(), [&](const test_error&) { ++handled; }); }) ==
          "group(top)[logic(a), group(inner)[runtime(b)], group(logics)[logic(c)]]");
    CHECK(handled == 2);

    std::vector<std::exception_ptr> members;
    try {
      corun::catch_each(sample(), [](const corun::cancelled&) {});
    } catch (const exception_group& rest) {
      members = rest.exceptions();
    }
    CHECK(members.size() == 4);  // nothing taken: the group itself is rethrown
  }

  TEST_CASE("exception_group: catch_each combines what a handler threw with the unhandled rest") {
    std::vector<int> seen;
    CHECK(thrown_by([&] {
            corun::catch_each(sample(), [&](const test_error& e) {
              seen.push_back(e.id());
              if (e.id() == 2) {
                throw std::runtime_error("handler saw 2");
              }
            });
          }) ==
          "group(corun: catch_each: a handler threw)[runtime(handler saw 2), "
          "group(top)[logic(a), group(inner)[runtime(b)], group(logics)[logic(c)]]]");
    CHECK(seen == std::vector<int>{1, 2});

    // Every leaf handled, two handlers threw: only what they threw, in leaf order.
    CHECK(
        thrown_by([] {
          corun::catch_each(
              exception_group("g", {err(1), logic("l"), err(2)}),
              [](const test_error& e) { throw std::logic_error("from " + std::to_string(e.id())); },
              [](const std::logic_error&) {});
        }) == "group(corun: catch_each: a handler threw)[logic(from 1), logic(from 2)]");
  }

  TEST_CASE("exception_group: catch_each leaves a leaf rethrown with throw, in its place") {
    CHECK(thrown_by([] {
            corun::catch_each(
                sample(),
                [](const test_error& e) {
                  if (e.id() == 2) {
                    throw;
                  }
                },
                [](const std::logic_error&) {});
          }) == "group(top)[group(inner)[E2, runtime(b)]]");
  }

  TEST_CASE(
      "exception_group: catch_each accepts function pointers, by-value and mutable handlers") {
    g_pointer_handler_calls = 0;
    int code_sum = 0;
    std::string last_cancel;
    // A thrown int: any thrown type can be a leaf, and here one is taken by value.
    corun::catch_each(
        exception_group("g", {err(1), std::make_exception_ptr(7), cancel("c"), err(2),
                              std::make_exception_ptr(5)}),
        &count_test_error, [&code_sum](int code) { code_sum += code; },
        [&last_cancel, calls = 0](const corun::cancelled& c) mutable {
          ++calls;
          last_cancel = c.message() + std::to_string(calls);
        });
    CHECK(g_pointer_handler_calls == 2);
    CHECK(code_sum == 12);
    CHECK(last_cancel == "c1");

    g_pointer_handler_calls = 0;
    corun::catch_each(exception_group("g", {err(3)}), count_test_error);
    CHECK(g_pointer_handler_calls == 1);
  }
}
