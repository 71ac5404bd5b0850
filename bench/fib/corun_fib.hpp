/// \file
/// The corun fib coroutine, shared by `fib/corun.cpp` and `fib/corun_no_cancel_check.cpp` (which
/// compiles it against a copy of the runtime built without the cancellation check).
#pragma once

#include "corun/corun.hpp"

namespace bench::fib {
namespace {

/// Spawns fib(n - 1), awaits fib(n - 2) inline, then awaits the spawned half.
corun::task<long> fib(int n) {
  if (n < 2) {
    co_return n;
  }
  auto a = corun::spawn(fib(n - 1));
  long b = co_await fib(n - 2);
  co_return co_await a + b;
}

}  // namespace
}  // namespace bench::fib
