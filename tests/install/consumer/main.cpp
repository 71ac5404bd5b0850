/// \file
/// Uses an installed corun through `find_package(corun CONFIG)`: spawns, joins and `when_all`s,
/// then checks the result, so a broken package (headers, library, exported usage requirements)
/// fails the test `install.consumer_builds`.
#include <corun/corun.hpp>

#include <cstdio>

#if defined(CORUN_CONSUMER_EXPECT_SHARED) && !defined(CORUN_SHARED_LIBRARY)
#error "a shared corun must define CORUN_SHARED_LIBRARY for its users (corun/detail/config.hpp)"
#endif

namespace {

corun::task<int> fib(int n) {
  if (n < 2) {
    co_return n;
  }
  auto left = corun::spawn(fib(n - 1));
  int right = co_await fib(n - 2);
  co_return co_await left + right;
}

corun::task<int> fib_pair() {
  auto [a, b] = co_await corun::when_all(fib(18), fib(19));
  co_return a + b;
}

}  // namespace

int main() {
  corun::runtime rt({.workers = 2});
  const int v = rt.block_on(fib_pair());
  if (v != 6765) {
    std::fprintf(stderr, "corun consumer: fib(18) + fib(19) = %d, expected 6765\n", v);
    return 1;
  }
  std::printf("corun consumer: fib(18) + fib(19) = %d\n", v);
  return 0;
}
