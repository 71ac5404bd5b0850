#include "scheduler/asymmetric_barrier.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

namespace corun::detail::asymmetric_barrier {

namespace {

long membarrier(int command) noexcept { return syscall(__NR_membarrier, command, 0U, 0); }

bool register_once() noexcept {
  if (const char* off = std::getenv("CORUN_NO_MEMBARRIER"); off != nullptr && *off != '\0') {
    return false;  // lets tests and benchmarks exercise the seq_cst fallback
  }
  const long supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
    return false;
  }
  return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

}  // namespace

bool available() noexcept {
  static const bool registered = register_once();
  return registered;
}

void heavy() noexcept {
  if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
    // Registered at start-up, so this cannot fail short of a kernel bug; do not continue
    // with a broken wake-up protocol.
    std::abort();
  }
}

}  // namespace corun::detail::asymmetric_barrier
