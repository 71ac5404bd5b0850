#include "common/host.hpp"

#include <fstream>
#include <string_view>
#include <utility>

namespace bench {

namespace {

/// If `line` reads "key<blanks>: value" for this `key`, stores the value and returns true.
[[nodiscard]] bool field(std::string_view line, std::string_view key, std::string& value) {
  if (line.substr(0, key.size()) != key) {
    return false;
  }
  const std::string_view rest = line.substr(key.size());
  const std::size_t colon = rest.find(':');
  // The key must end where the padding starts: "model" is not "model name".
  if (colon == std::string_view::npos ||
      rest.substr(0, colon).find_first_not_of(" \t") != std::string_view::npos) {
    return false;
  }
  const std::size_t start = rest.find_first_not_of(' ', colon + 1);
  value = start == std::string_view::npos ? std::string{} : std::string{rest.substr(start)};
  return true;
}

}  // namespace

std::string describe_cpu(std::istream& cpuinfo) {
  std::string name;
  std::string family;
  std::string model;
  std::string stepping;
  std::string line;
  // The first processor's block ends at the first empty line.
  while (std::getline(cpuinfo, line) && !line.empty()) {
    static_cast<void>(field(line, "model name", name) || field(line, "cpu family", family) ||
                      field(line, "model", model) || field(line, "stepping", stepping));
  }
  std::string numbers;
  for (const auto& [label, value] :
       {std::pair{"family ", &family}, {"model ", &model}, {"stepping ", &stepping}}) {
    if (!value->empty()) {
      numbers.append(numbers.empty() ? "" : ", ").append(label).append(*value);
    }
  }
  if (numbers.empty()) {
    return name;
  }
  return name.empty() ? numbers : name + " (" + numbers + ")";
}

std::string this_cpu() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  return cpuinfo ? describe_cpu(cpuinfo) : std::string{};
}

}  // namespace bench
