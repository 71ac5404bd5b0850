#include "common/table_copies.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

extern char** environ;  // NOLINT(readability-identifier-naming): POSIX's name

namespace bench {

namespace {

namespace fs = std::filesystem;

/// A new executable file in `dir` holding the bytes of `self`, or nothing if `dir` takes none.
std::optional<fs::path> copy_into(const fs::path& self, const fs::path& dir) {
  std::string name = (dir / "corun_bench.copy.XXXXXX").string();
  const int fd = mkstemp(name.data());
  if (fd < 0) {
    return std::nullopt;
  }
  close(fd);
  const fs::path copy(name);
  std::error_code error;
  fs::copy_file(self, copy, fs::copy_options::overwrite_existing, error);
  if (!error) {
    fs::permissions(copy, fs::perms::owner_all, fs::perm_options::replace, error);
  }
  if (error) {
    fs::remove(copy, error);
    return std::nullopt;
  }
  return copy;
}

/// How one process ended: its wait status, or the error that kept it from starting.
struct outcome {
  bool started = false;
  int status = 0;
  int spawn_error = 0;
};

outcome run_process(const fs::path& program, const std::vector<std::string>& args) {
  std::vector<std::string> owned{program.string()};
  owned.insert(owned.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(owned.size() + 1);
  for (std::string& arg : owned) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  outcome result;
  pid_t pid = 0;
  result.spawn_error = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (result.spawn_error != 0) {
    return result;
  }
  result.started = true;
  while (waitpid(pid, &result.status, 0) < 0) {
    if (errno != EINTR) {
      // The child cannot be waited for: count it as failed.
      result.status = -1;
      break;
    }
  }
  return result;
}

std::string describe(const outcome& ended) {
  if (!ended.started) {
    return std::string("could not start: ").append(std::strerror(ended.spawn_error));
  }
  if (ended.status == -1) {
    return "could not be waited for";
  }
  if (WIFSIGNALED(ended.status)) {
    return std::string("was killed by signal ").append(std::to_string(WTERMSIG(ended.status)));
  }
  return std::string("exited with status ").append(std::to_string(WEXITSTATUS(ended.status)));
}

}  // namespace

bool run_in_copies(std::size_t processes, const std::vector<std::string>& args,
                   table_reporter& reporter, std::ostream& log) {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) {
    log << "corun_bench: cannot find this program's executable (/proc/self/exe): "
        << error.message() << '\n';
    return false;
  }
  // Next to the executable first: a temporary directory may be mounted noexec.
  std::vector<fs::path> dirs{self.parent_path()};
  if (fs::path temp = fs::temp_directory_path(error); !error) {
    dirs.push_back(std::move(temp));
  }

  bool all_ok = true;
  std::size_t merged = 0;
  for (std::size_t process = 1; process <= processes; ++process) {
    log << "\ncorun_bench --table: process " << process << " of " << processes
        << ", a fresh copy of this program\n"
        << std::flush;
    outcome ended;
    std::optional<fs::path> samples;
    for (const fs::path& dir : dirs) {
      const std::optional<fs::path> copy = copy_into(self, dir);
      if (!copy) {
        log << "corun_bench: cannot copy this program into " << dir.string() << '\n';
        continue;
      }
      samples = fs::path(copy->string() + ".samples");
      std::vector<std::string> with_samples{"--samples-to=" + samples->string()};
      with_samples.insert(with_samples.end(), args.begin(), args.end());
      ended = run_process(*copy, with_samples);
      fs::remove(*copy, error);
      if (ended.started) {
        break;
      }
    }
    const bool exited_ok =
        ended.started && WIFEXITED(ended.status) && WEXITSTATUS(ended.status) == 0;
    bool saved = false;
    if (samples) {
      if (std::ifstream in(*samples); in) {
        saved = reporter.merge(in);
      }
      fs::remove(*samples, error);
    }
    if (samples && !exited_ok) {
      log << "corun_bench: process " << process << ' ' << describe(ended) << '\n';
    }
    if (!saved) {
      log << "corun_bench: process " << process << " left no results\n";
    } else {
      ++merged;
    }
    all_ok = all_ok && exited_ok && saved;
  }
  reporter.set_source(table_reporter::source::fresh_copies, merged);
  return all_ok;
}

}  // namespace bench
