#include "tests/test_support/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pdkarchive::testing {
namespace {

// Starts `argv` (argv[0] is the program's path) with stdout and stderr piped.
pid_t SpawnProgram(const std::vector<std::string>& argv_in, int* out_fd, int* err_fd) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    std::vector<std::string> copy = argv_in;
    std::vector<char*> argv;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(copy[0].c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  *out_fd = out_pipe[0];
  *err_fd = err_pipe[0];
  return pid;
}

pid_t Spawn(const std::vector<std::string>& args, int* out_fd, int* err_fd) {
  std::vector<std::string> argv = {BinaryPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  return SpawnProgram(argv, out_fd, err_fd);
}

// Reads whatever is available on `fd` within `wait`, appending to `out`.
// Returns false at EOF.
bool ReadSome(int fd, std::string& out, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n <= 0) return false;
  out.append(buf, static_cast<size_t>(n));
  return true;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

}  // namespace

std::string BinaryPath() { return PDKARCHIVE_BINARY; }

CommandResult RunCli(const std::vector<std::string>& args,
                     std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {BinaryPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, timeout);
}

CommandResult RunProgram(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout) {
  CommandResult result;
  int out_fd = -1;
  int err_fd = -1;
  pid_t pid = SpawnProgram(argv, &out_fd, &err_fd);
  if (pid < 0) return result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true;
  bool err_open = true;
  while (out_open || err_open) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      break;
    }
    if (out_open) out_open = ReadSome(out_fd, result.out, std::chrono::milliseconds(10));
    if (err_open) err_open = ReadSome(err_fd, result.err, std::chrono::milliseconds(10));
  }
  ::close(out_fd);
  ::close(err_fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

absl::StatusOr<ServerProcess> ServerProcess::Start(
    const std::string& db_path, const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {"serve", "--db", db_path, "--http-listen",
                                   "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return StartWithArgs(args);
}

absl::StatusOr<ServerProcess> ServerProcess::StartWithArgs(
    const std::vector<std::string>& args) {
  ServerProcess server;
  server.pid_ = Spawn(args, &server.stdout_fd_, &server.stderr_fd_);
  if (server.pid_ < 0) return absl::InternalError("cannot start pdk-archive");
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (server.http_port_ == 0 || server.grpc_port_ == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("no listening lines; stdout: ", out, " stderr: ", server.Stderr()));
    }
    if (!ReadSome(server.stdout_fd_, out, std::chrono::milliseconds(50))) {
      return absl::InternalError(absl::StrCat("pdk-archive exited early; stdout: ", out,
                                              " stderr: ", server.Stderr()));
    }
    for (const char* kind : {"http", "grpc"}) {
      std::string prefix = absl::StrCat(kind, " listening on ");
      size_t at = out.find(prefix);
      if (at == std::string::npos) continue;
      size_t end = out.find('\n', at);
      if (end == std::string::npos) continue;
      std::string address = out.substr(at + prefix.size(), end - at - prefix.size());
      int port = 0;
      if (!absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) continue;
      (kind[0] == 'h' ? server.http_port_ : server.grpc_port_) = port;
    }
  }
  return server;
}

ServerProcess::ServerProcess(ServerProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      stdout_fd_(std::exchange(other.stdout_fd_, -1)),
      stderr_fd_(std::exchange(other.stderr_fd_, -1)),
      http_port_(other.http_port_),
      grpc_port_(other.grpc_port_),
      stderr_(std::move(other.stderr_)) {}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  if (stderr_fd_ >= 0) ::close(stderr_fd_);
}

std::string ServerProcess::grpc_address() const {
  return absl::StrCat("127.0.0.1:", grpc_port_);
}

absl::StatusOr<int> ServerProcess::Stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  ::kill(pid_, signal);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      Stderr();
      return DecodeStatus(status);
    }
    Stderr();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("server did not exit in time");
}

std::string ServerProcess::Stderr() {
  if (stderr_fd_ >= 0) {
    while (true) {
      size_t before = stderr_.size();
      if (!ReadSome(stderr_fd_, stderr_, std::chrono::milliseconds(0))) break;
      if (stderr_.size() == before) break;
    }
  }
  return stderr_;
}

}  // namespace pdkarchive::testing
