// The out-of-line misuse throws of include/corun/detail/misuse.hpp. Cold: they end a program's
// misuse, never a hot path.
#include "corun/detail/misuse.hpp"

#include <stdexcept>
#include <string>

namespace corun::detail {

[[gnu::cold]] void throw_logic_error(const char* message) { throw std::logic_error(message); }

[[gnu::cold]] void throw_outside_task(const char* what) {
  throw std::logic_error(std::string("corun: ") + what +
                         " called outside a corun task (use runtime::spawn or block_on)");
}

}  // namespace corun::detail
