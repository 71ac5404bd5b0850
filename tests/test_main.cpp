/// \file
/// doctest's main for the corun test executables, plus the leak check every test case gets:
/// the number of live coroutine frames must be back to its starting value when a test case (and
/// each of its subcase passes) ends. LeakSanitizer misses leaked coroutine frames with g++ 12,
/// so this counter is how leaks are caught.
///
/// A listener cannot fail a test case after the fact, so a mismatch is printed with the test
/// case's name and makes the process exit with a failure status.
///
/// A run asked for by name (`--test-case=`, as each CTest test is) that ran no test case fails
/// too. CTest splits a test's name at every ';' (a CMake list), so doctest_discover_tests turns
/// a test case named "a; b" into two CTest tests, "a" and " b", whose filters match nothing:
/// both passed without running anything, and ten test cases never ran in CI that way until
/// 2026-12-07.
#define DOCTEST_CONFIG_IMPLEMENT
#include "corun/detail/frame_alloc.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string_view>

namespace {

std::atomic<int> g_leaking_cases{0};
std::atomic<int> g_cases_run{0};

/// True if the command line selects test cases by name.
bool selects_by_name(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    for (const std::string_view option : {"--test-case=", "-tc=", "--dt-test-case=", "--dt-tc="}) {
      if (arg.starts_with(option)) {
        return true;
      }
    }
  }
  return false;
}

class live_frames_listener : public doctest::IReporter {
 public:
  explicit live_frames_listener(const doctest::ContextOptions& /*options*/) {}

  void report_query(const doctest::QueryData& /*data*/) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& /*stats*/) override {}
  void test_case_start(const doctest::TestCaseData& data) override {
    g_cases_run.fetch_add(1);
    m_case = &data;
    m_baseline = corun::detail::live_frames();
  }
  void test_case_reenter(const doctest::TestCaseData& /*data*/) override {
    check("after a subcase pass");
    m_baseline = corun::detail::live_frames();
  }
  void test_case_end(const doctest::CurrentTestCaseStats& /*stats*/) override {
    check("at the end");
  }
  void test_case_exception(const doctest::TestCaseException& /*exception*/) override {}
  void subcase_start(const doctest::SubcaseSignature& /*signature*/) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& /*data*/) override {}
  void log_message(const doctest::MessageData& /*data*/) override {}
  void test_case_skipped(const doctest::TestCaseData& /*data*/) override {}

 private:
  void check(const char* when) {
    const std::int64_t now = corun::detail::live_frames();
    if (now != m_baseline) {
      g_leaking_cases.fetch_add(1);
      std::fprintf(stderr,
                   "LEAK: test case \"%s\" (%s:%d): %lld coroutine frame(s) alive %s that were "
                   "not alive at its start (live_frames %lld -> %lld)\n",
                   m_case != nullptr ? m_case->m_name : "?",
                   m_case != nullptr ? m_case->m_file.c_str() : "?",
                   m_case != nullptr ? m_case->m_line : 0, static_cast<long long>(now - m_baseline),
                   when, static_cast<long long>(m_baseline), static_cast<long long>(now));
      std::fflush(stderr);
    }
  }

  const doctest::TestCaseData* m_case = nullptr;
  std::int64_t m_baseline = 0;
};

}  // namespace

REGISTER_LISTENER("live_frames", 1, live_frames_listener);

int main(int argc, char** argv) {
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  const int result = context.run();
  if (context.shouldExit()) {
    return result;
  }
  if (g_cases_run.load() == 0 && selects_by_name(argc, argv)) {
    std::fprintf(stderr,
                 "no test case matches the --test-case filter: a TEST_CASE name must not hold "
                 "';', at which CTest splits it\n");
    return result != 0 ? result : 1;
  }
  if (g_leaking_cases.load() != 0) {
    std::fprintf(stderr, "%d test case(s) leaked coroutine frames\n", g_leaking_cases.load());
    return result != 0 ? result : 1;
  }
  return result;
}
