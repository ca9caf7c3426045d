// Runs the real `pdk-archive serve` binary as a child process, as a user
// would: flags on the command line, addresses read from its stdout.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_SERVER_PROCESS_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_SERVER_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pdkarchive::testing {

// The path of the pdk-archive binary under test.
std::string BinaryPath();

// The result of running a command to completion.
struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;
  std::string err;
};

// Runs the pdk-archive binary with `args`, waits (up to `timeout`, then
// SIGKILL) and captures its output.
CommandResult RunCli(const std::vector<std::string>& args,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Runs `argv` (argv[0] is a program's path, e.g. /usr/bin/setpriv) the same
// way.
CommandResult RunProgram(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

class ServerProcess {
 public:
  // Starts `pdk-archive serve` with `--db db_path`, both listeners on
  // 127.0.0.1:0, and `extra_args`; waits for both "listening on" lines.
  static absl::StatusOr<ServerProcess> Start(const std::string& db_path,
                                             const std::vector<std::string>& extra_args);
  // Starts `pdk-archive` with exactly `args` (e.g. {"serve", "--config", F});
  // waits for both "listening on" lines.
  static absl::StatusOr<ServerProcess> StartWithArgs(const std::vector<std::string>& args);

  ServerProcess(ServerProcess&& other) noexcept;
  ServerProcess& operator=(ServerProcess&&) = delete;
  // Kills the process (SIGKILL) if it is still running.
  ~ServerProcess();

  int http_port() const { return http_port_; }
  int grpc_port() const { return grpc_port_; }
  std::string grpc_address() const;
  pid_t pid() const { return pid_; }

  // Sends `signal` and waits up to `timeout` for the exit; returns the exit
  // code (or -signal when killed). DeadlineExceeded if it does not exit.
  absl::StatusOr<int> Stop(int signal, std::chrono::milliseconds timeout =
                                           std::chrono::seconds(15));
  // Everything the process wrote to stderr so far (after Stop: all of it).
  std::string Stderr();

 private:
  ServerProcess() = default;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  int http_port_ = 0;
  int grpc_port_ = 0;
  std::string stderr_;
};

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_SERVER_PROCESS_H_
