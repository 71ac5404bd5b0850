/// \file
/// What the seed examples under tools/examples share: their command line and a line printer
/// that stamps every line with the time since the program started, on the runtime's clock.
///
///   --virtual-time   run on virtual time: sleeps end at once, so a run of minutes takes
///                    milliseconds and prints the same stamps every time (how CTest runs them)
///   --workers N      worker threads (default: the hardware's)
///   --run-for S      end a program that would run forever after S seconds (default: forever)
///
/// The stamps replace the seeds' `print(datetime.datetime.now())`: they say the same thing
/// (when the line was printed) in a form a test can compare.
#pragma once

#include "corun/corun.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace corun_example {

struct options {
  corun::runtime_options runtime;
  std::optional<std::chrono::nanoseconds> run_for;
};

/// Parses the flags above; prints usage and exits with status 2 on anything else.
inline options parse(int argc, char** argv) {
  options parsed;
  auto usage = [&] {
    std::fprintf(stderr, "usage: %s [--virtual-time] [--workers N] [--run-for SECONDS]\n", argv[0]);
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    try {
      if (arg == "--virtual-time") {
        parsed.runtime.virtual_time = true;
      } else if (arg == "--workers" && i + 1 < argc) {
        parsed.runtime.workers = std::stoul(argv[++i]);
      } else if (arg == "--run-for" && i + 1 < argc) {
        parsed.run_for = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(std::stod(argv[++i])));
      } else {
        usage();
      }
    } catch (const std::logic_error&) {  // std::stoul / std::stod on a non-number
      usage();
    }
  }
  return parsed;
}

/// Prints `[   12.500s] text` lines, stamped with the runtime clock's time since `start()`.
/// Whole lines from any worker, flushed at once (so a test reading the output as it comes sees
/// each line when it happens).
class printer {
 public:
  /// Called in the program's first task: the origin of the stamps.
  void start() { m_start = corun::now(); }

  void say(const std::string& text) {
    const std::chrono::duration<double> since = corun::now() - m_start;
    const std::lock_guard<std::mutex> lock(m_lock);
    std::printf("[%9.3fs] %s\n", since.count(), text.c_str());
    std::fflush(stdout);
  }

 private:
  std::mutex m_lock;
  corun::time_point m_start{};
};

inline printer& out() {
  static printer the_printer;
  return the_printer;
}

/// Runs `program` to its end, or until `run_for` passed if given (then it is cancelled and its
/// cleanup runs): `corun::move_on_after` around it.
inline corun::task<void> bounded(std::optional<std::chrono::nanoseconds> run_for,
                                 corun::task<void> program) {
  if (!run_for) {
    co_await std::move(program);
    co_return;
  }
  const bool finished = co_await corun::move_on_after(*run_for, std::move(program));
  if (!finished) {
    out().say("--run-for passed: stopped");
  }
}

/// Runs `body` (an example's `main` proper), turning an exception that escapes it into a
/// message and exit status 1 instead of `std::terminate`'s abort.
template <class Body>
int guarded_main(const char* program, Body body) noexcept {
  try {
    return body();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: %s\n", program, error.what());
  } catch (...) {
    std::fprintf(stderr, "%s: unknown exception\n", program);
  }
  return 1;
}

/// The `main` of an example that runs to its end (or `--run-for`): parses the flags, makes the
/// runtime, runs `make_program()` on it.
template <class MakeProgram>
int run_example(int argc, char** argv, MakeProgram make_program) noexcept {
  return guarded_main(argv[0], [&] {
    const options parsed = parse(argc, argv);
    corun::runtime rt(parsed.runtime);
    rt.block_on(bounded(parsed.run_for, make_program()));
    return 0;
  });
}

}  // namespace corun_example
