// Compiles corun/corun.hpp, and through it every public header, on its own: the umbrella header
// stands alone, and the `tidy-library` workflow (CI) runs clang-tidy over the headers that no
// file of the library itself includes.
#include "corun/corun.hpp"
