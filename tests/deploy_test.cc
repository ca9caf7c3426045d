// Deployment (issue 15, DESIGN.md "Deployment"), each through the real tool:
// /metrics checked by promtool; Debian's nginx running deploy/nginx/
// pdk-archive.conf with a throwaway certificate in front of a real serve;
// systemd-analyze on deploy/systemd/pdk-archive.service as installed; and
// `cmake --install` into a DESTDIR. A missing tool fails the test (install
// them with scripts/deps.sh --with-test-tools), it never skips.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::RunCli;
using testing::RunProgram;
using testing::ServerProcess;

constexpr char kSecret[] = "deploy-test-secret";
constexpr char kNginx[] = "/usr/sbin/nginx";
constexpr char kPromtool[] = "/usr/bin/promtool";
constexpr char kSystemdAnalyze[] = "/usr/bin/systemd-analyze";
constexpr char kOpenssl[] = "/usr/bin/openssl";
constexpr char kStrace[] = "/usr/bin/strace";

std::string SourcePath(const std::string& relative) {
  return absl::StrCat(PDKARCHIVE_SOURCE_DIR, "/", relative);
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A tool the test cannot run without: fails (never skips) naming the fix.
::testing::AssertionResult Installed(const char* path) {
  if (::access(path, X_OK) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << path << " is missing: run scripts/deps.sh --with-test-tools";
}

// `text` with the one occurrence of `from` replaced by `to`; fails the test
// when `from` is not there (the deploy file changed under the test).
std::string ReplaceOnce(const std::string& text, const std::string& from,
                        const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "deploy file no longer holds: " << from;
  if (at == std::string::npos) return text;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << "twice: " << from;
  std::string out = text;
  out.replace(at, from.size(), to);
  return out;
}

std::string Event(const std::string& id, int door) {
  return absl::StrCat(R"({"id":")", id, R"(","body":{"doorId":)", door,
                      R"(,"personId":7},"metadata":{"occurred":1646870400000},)"
                      R"("panelId":"1070000","topic":"door.request.allowed"})");
}

// A TCP port nobody listens on now (bound, read, released).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  const timeval timeout{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

struct HttpsReply {
  int status = 0;
  std::string head;
  std::string body;
};

// Sends `request` (whole, with "Connection: close") over TLS to
// 127.0.0.1:`port`, verifying the server's certificate against `ca_file`
// for the name "localhost", and reads the reply to EOF.
absl::StatusOr<HttpsReply> HttpsExchange(int port, const std::string& ca_file,
                                         const std::string& request) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                         SSL_CTX_free);
  if (!ctx || SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
    return absl::InternalError("cannot load the test CA");
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  const int fd = ConnectLoopback(port);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot connect to ", port));
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  SSL_set_tlsext_host_name(ssl.get(), "localhost");
  SSL_set1_host(ssl.get(), "localhost");
  if (SSL_connect(ssl.get()) != 1) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat(
        "TLS handshake failed: ", ERR_error_string(ERR_get_error(), nullptr)));
  }
  size_t sent = 0;
  while (sent < request.size()) {
    const int n = SSL_write(ssl.get(), request.data() + sent,
                            static_cast<int>(std::min<size_t>(request.size() - sent, 65536)));
    if (n <= 0) break;  // the server may answer (413) before taking it all
    sent += static_cast<size_t>(n);
  }
  std::string in;
  char buffer[16384];
  for (;;) {
    const int n = SSL_read(ssl.get(), buffer, sizeof(buffer));
    if (n <= 0) break;
    in.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos || in.size() < 12) {
    return absl::DataLossError(absl::StrCat("no HTTP reply: ", in));
  }
  HttpsReply reply;
  reply.head = in.substr(0, end);
  reply.body = in.substr(end + 4);
  if (!absl::SimpleAtoi(in.substr(9, 3), &reply.status)) {
    return absl::DataLossError(absl::StrCat("no status: ", reply.head));
  }
  return reply;
}

// HMAC-SHA1(kSecret, body) in hex, as PDK signs (computed by the test's own
// client code, not the product's).
std::string Signature(const std::string& body) {
  return testing::SignedHeaders(kSecret, body).back().second;  // X-PDK-SIGNATURE
}

// A POST of `body` to `path` as PDK sends it: the signature under the
// underscore spelling of its header.
std::string PdkPost(const std::string& path, const std::string& body,
                    const std::string& signature) {
  return absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: localhost\r\n",
                      "Content-Type: application/json\r\n", "X_PDK_SIGNATURE: ", signature,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
                      body);
}

// A child process (nginx) with stdout and stderr in files; SIGTERM and reaped
// when it goes.
class Child {
 public:
  static absl::StatusOr<std::unique_ptr<Child>> Start(const std::vector<std::string>& argv,
                                                      const fs::path& log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return absl::InternalError(absl::StrCat("cannot start ", argv[0]));
    return std::unique_ptr<Child>(new Child(pid));
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool Running() {
    if (pid_ <= 0) return false;
    if (::waitpid(pid_, nullptr, WNOHANG) == 0) return true;
    pid_ = -1;
    return false;
  }
  // Waits up to `timeout` for the exit.
  bool Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (Running()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

class DeployTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::FreshTestDir("pdkarchive-deploy"); }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `cmake --install` of this build into DESTDIR `destdir` (empty: none)
  // with `prefix`.
  CommandResult CmakeInstall(const std::string& destdir, const std::string& prefix) {
    std::string command = absl::StrCat("exec '", PDKARCHIVE_CMAKE, "' --install '",
                                       PDKARCHIVE_BUILD_DIR, "' --prefix '", prefix, "'");
    if (!destdir.empty()) command = absl::StrCat("DESTDIR='", destdir, "' ", command);
    return RunProgram({"/bin/sh", "-c", command}, std::chrono::seconds(120));
  }

  fs::path dir_;
};

// ---------------------------------------------------------------------------
// /metrics, on each engine, after deliveries of every kind.

class MetricsTest : public DeployTest,
                    public ::testing::WithParamInterface<testing::Engine> {};

TEST_P(MetricsTest, PromtoolAcceptsMetricsWithoutLintWarnings) {
  ASSERT_TRUE(Installed(kPromtool));
  auto archive = testing::TestArchive::Create(GetParam(), dir_);
  ASSERT_TRUE(archive.ok()) << archive.status();
  const std::string secret_file = (dir_ / "secret").string();
  WriteFile(secret_file, kSecret);
  auto server = ServerProcess::Start((*archive)->db(), {"--secret-file", secret_file});
  ASSERT_TRUE(server.ok()) << server.status();

  const std::string body = Event("m-1", 1);
  const std::string unknown =
      R"({"id":"m-2","topic":"door.something.new","body":{"doorId":"three"}})";
  for (const std::string& b : {body, body, unknown}) {  // accepted, duplicate, unknown
    auto r = testing::HttpRequest(server->http_port(), "POST", "/webhooks", b,
                                  testing::SignedHeaders(kSecret, b));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
  }
  auto refused = testing::HttpRequest(server->http_port(), "POST", "/webhooks", body);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 401);
  auto metrics = testing::HttpRequest(server->http_port(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  ASSERT_EQ(metrics->status, 200);
  const std::string& text = metrics->body;
  // The renamed histogram is in seconds, with its buckets' bounds in seconds.
  EXPECT_TRUE(absl::StrContains(text, "\n# TYPE pdkarchive_commit_latency_seconds histogram\n"));
  EXPECT_TRUE(absl::StrContains(text, "\npdkarchive_commit_latency_seconds_bucket{le=\"0.001\"} "));
  const std::string sum_key = "\npdkarchive_commit_latency_seconds_sum ";
  const size_t sum_at = text.find(sum_key);
  ASSERT_NE(sum_at, std::string::npos) << text;
  double sum = -1;
  EXPECT_TRUE(absl::SimpleAtod(
      text.substr(sum_at + sum_key.size(), text.find('\n', sum_at + 1) - sum_at - sum_key.size()),
      &sum));
  EXPECT_GT(sum, 0);
  EXPECT_LT(sum, 60) << "seconds, not milliseconds";
  EXPECT_TRUE(absl::StrContains(text, "\npdkarchive_deliveries_total{result=\"duplicate\"} 1\n"));
  EXPECT_FALSE(absl::StrContains(text, "millisecond")) << text;

  const fs::path file = dir_ / "metrics.txt";
  WriteFile(file, text);
  CommandResult check = RunProgram(
      {"/bin/sh", "-c", absl::StrCat("exec ", kPromtool, " check metrics < '", file.string(), "'")});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err << "\n" << text;
  EXPECT_EQ(check.out + check.err, "") << text;  // no lint warnings either

  // promtool does catch what this replaced.
  const fs::path old_file = dir_ / "old.txt";
  WriteFile(old_file,
            "# HELP pdkarchive_commit_latency_milliseconds Commit time.\n"
            "# TYPE pdkarchive_commit_latency_milliseconds histogram\n"
            "pdkarchive_commit_latency_milliseconds_bucket{le=\"+Inf\"} 1\n"
            "pdkarchive_commit_latency_milliseconds_sum 3\n"
            "pdkarchive_commit_latency_milliseconds_count 1\n");
  CommandResult old = RunProgram({"/bin/sh", "-c",
                                  absl::StrCat("exec ", kPromtool, " check metrics < '",
                                               old_file.string(), "'")});
  EXPECT_NE(old.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(old.out + old.err, "base unit")) << old.out << old.err;
  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

// ---------------------------------------------------------------------------
// The unit's system-call filter lets serve do its work: serve under strace
// (as an unprivileged user, like the unit's DynamicUser) through start-up,
// deliveries, /metrics, every client command and SIGTERM; every system call
// it made must be one the unit's SystemCallFilter= lines allow, as
// systemd-analyze expands them.

// The system calls of each group `systemd-analyze syscall-filter` lists.
std::map<std::string, std::vector<std::string>> SyscallGroups(const std::string& listing) {
  std::map<std::string, std::vector<std::string>> groups;
  std::string group;
  for (absl::string_view line : absl::StrSplit(listing, '\n')) {
    if (absl::StartsWith(line, "@")) {
      group = std::string(line.substr(0, line.find(' ')));
      continue;
    }
    line = absl::StripAsciiWhitespace(line);
    if (group.empty() || line.empty() || line[0] == '#') continue;
    groups[group].emplace_back(line.substr(0, line.find(' ')));
  }
  return groups;
}

void Expand(const std::map<std::string, std::vector<std::string>>& groups,
            const std::string& item, std::set<std::string>& out) {
  if (item.empty() || item[0] != '@') {
    out.insert(item);
    return;
  }
  auto it = groups.find(item);
  if (it == groups.end()) return;
  for (const std::string& member : it->second) Expand(groups, member, out);
}

// The system calls named on each line of strace -f output after `main_pid`
// exec'd `binary` (what strace's own child did before that is not serve's).
std::set<std::string> SyscallsAfterExec(const std::string& trace, int main_pid,
                                        const std::string& binary) {
  std::set<std::string> used;
  bool exec_seen = false;
  for (absl::string_view line : absl::StrSplit(trace, '\n')) {
    const size_t space = line.find(' ');
    int pid = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtoi(line.substr(0, space), &pid)) {
      continue;
    }
    absl::string_view call = absl::StripLeadingAsciiWhitespace(line.substr(space));
    if (pid == main_pid && !exec_seen) {
      exec_seen = absl::StartsWith(call, absl::StrCat("execve(\"", binary, "\""));
      if (!exec_seen) continue;
    }
    if (absl::StartsWith(call, "<... ")) call.remove_prefix(5);
    const size_t name_end = call.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_");
    if (name_end == 0 || name_end == absl::string_view::npos) continue;
    if (call[name_end] != '(' && call[name_end] != ' ') continue;
    used.emplace(call.substr(0, name_end));
  }
  return used;
}

class SandboxTest : public DeployTest,
                    public ::testing::WithParamInterface<testing::Engine> {};

TEST_P(SandboxTest, ServeMakesOnlySystemCallsTheUnitAllows) {
  ASSERT_TRUE(Installed(kSystemdAnalyze));
  ASSERT_TRUE(Installed(kStrace));
  const std::string unit = ReadFile(SourcePath("deploy/systemd/pdk-archive.service"));
  CommandResult listing = RunProgram({kSystemdAnalyze, "syscall-filter"});
  ASSERT_EQ(listing.exit_code, 0) << listing.err;
  const auto groups = SyscallGroups(listing.out);
  ASSERT_TRUE(groups.count("@system-service")) << listing.out;
  std::set<std::string> allowed;
  std::set<std::string> denied;
  int filter_lines = 0;
  for (absl::string_view line : absl::StrSplit(unit, '\n')) {
    if (!absl::ConsumePrefix(&line, "SystemCallFilter=")) continue;
    ++filter_lines;
    const bool deny = absl::ConsumePrefix(&line, "~");
    for (absl::string_view item : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      Expand(groups, std::string(item), deny ? denied : allowed);
    }
  }
  ASSERT_GT(filter_lines, 0) << "the unit has no SystemCallFilter=";
  ASSERT_GT(allowed.size(), 100u);

  // The archive's directory belongs to the unprivileged user, as the unit's
  // StateDirectory= belongs to its DynamicUser.
  const fs::path state = dir_ / "state";
  fs::create_directories(state);
  std::vector<std::string> argv = {kStrace, "-f", "-qq", "-o", (dir_ / "trace.txt").string()};
  if (::geteuid() == 0) {
    const passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    ASSERT_EQ(::chown(state.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
    argv.insert(argv.end(), {"-u", "nobody"});
  }
  auto archive = testing::TestArchive::Create(GetParam(), state);
  ASSERT_TRUE(archive.ok()) << archive.status();
  const std::string secret_file = (dir_ / "secret").string();
  WriteFile(secret_file, kSecret);
  ::chmod(secret_file.c_str(), 0644);
  const std::string binary = testing::BinaryPath();
  argv.insert(argv.end(), {binary, "serve", "--db", (*archive)->db(), "--http-listen",
                           "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--secret-file",
                           secret_file});
  auto traced = Child::Start(argv, dir_ / "serve.out");
  ASSERT_TRUE(traced.ok()) << traced.status();

  // Serve's own pid (from its execve line) and its ports (from its stdout).
  int serve_pid = 0;
  int http_port = 0;
  std::string grpc_address;
  for (int i = 0; i < 600 && (http_port == 0 || grpc_address.empty()); ++i) {
    ASSERT_TRUE((*traced)->Running()) << ReadFile(dir_ / "serve.out");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string out = ReadFile(dir_ / "serve.out");
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      if (absl::ConsumePrefix(&line, "http listening on ")) {
        ASSERT_TRUE(absl::SimpleAtoi(line.substr(line.rfind(':') + 1), &http_port));
      } else if (absl::ConsumePrefix(&line, "grpc listening on ")) {
        grpc_address = std::string(line);
      }
    }
  }
  ASSERT_GT(http_port, 0) << ReadFile(dir_ / "serve.out");
  for (absl::string_view line : absl::StrSplit(ReadFile(dir_ / "trace.txt"), '\n')) {
    if (absl::StrContains(line, absl::StrCat("execve(\"", binary, "\""))) {
      ASSERT_TRUE(absl::SimpleAtoi(line.substr(0, line.find(' ')), &serve_pid));
      break;
    }
  }
  ASSERT_GT(serve_pid, 0);
  // Whatever happens below, serve does not outlive the test.
  struct KillOnExit {
    int pid;
    ~KillOnExit() { ::kill(pid, SIGKILL); }
  } kill_on_exit{serve_pid};

  for (int i = 1; i <= 20; ++i) {
    const std::string body = Event(absl::StrCat("sandbox-", i % 15), i % 4);
    auto r = testing::HttpRequest(http_port, "POST", "/webhooks", body,
                                  testing::SignedHeaders(kSecret, body));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
  }
  for (const char* path : {"/metrics", "/healthz"}) {
    auto r = testing::HttpRequest(http_port, "GET", path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << path;
  }
  auto events = RunCli({"events", "--server", grpc_address, "--door", "1", "--json"});
  EXPECT_EQ(events.exit_code, 0) << events.err;
  auto count = RunCli({"count", "--server", grpc_address, "--by", "door,day"});
  EXPECT_EQ(count.exit_code, 0) << count.err;
  auto exported = RunCli({"export", "--server", grpc_address, "-o", "/dev/null"});
  EXPECT_EQ(exported.exit_code, 0) << exported.err;
  ASSERT_EQ(::kill(serve_pid, SIGTERM), 0);
  ASSERT_TRUE((*traced)->Wait(std::chrono::seconds(30)));
  EXPECT_TRUE(absl::StrContains(ReadFile(dir_ / "serve.out"), "shutting down"));

  const std::set<std::string> used =
      SyscallsAfterExec(ReadFile(dir_ / "trace.txt"), serve_pid, binary);
  ASSERT_GT(used.size(), 30u);
  std::vector<std::string> refused;
  for (const std::string& call : used) {
    if (!allowed.count(call) || denied.count(call)) refused.push_back(call);
  }
  EXPECT_TRUE(refused.empty()) << "the unit's SystemCallFilter= would refuse: "
                               << absl::StrJoin(refused, ", ");
}

INSTANTIATE_TEST_SUITE_P(Engines, SandboxTest, ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

INSTANTIATE_TEST_SUITE_P(Engines, MetricsTest, ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

// ---------------------------------------------------------------------------
// nginx + TLS in front of serve, configured by deploy/nginx/pdk-archive.conf.

// Fault injection for the proxy's retry: a node that answers every request
// 503 with Retry-After (as serve does when its store cannot commit) and
// stores nothing. Listens on 127.0.0.1:port() until destroyed.
class RefusingNode {
 public:
  RefusingNode() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::listen(fd_, 16) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~RefusingNode() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int requests() const { return requests_.load(); }

 private:
  void Serve() {
    for (;;) {
      const int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) return;
      const timeval timeout{5, 0};
      ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      // Read the head and its Content-Length body, then refuse.
      std::string in;
      char buffer[65536];
      size_t need = std::string::npos;
      while (need == std::string::npos || in.size() < need) {
        const ssize_t n = ::recv(conn, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        in.append(buffer, static_cast<size_t>(n));
        const size_t head_end = in.find("\r\n\r\n");
        if (need == std::string::npos && head_end != std::string::npos) {
          size_t length = 0;
          const std::string head = absl::AsciiStrToLower(in.substr(0, head_end));
          const size_t at = head.find("\ncontent-length:");
          if (at != std::string::npos) {
            const size_t start = at + 16;
            (void)absl::SimpleAtoi(
                absl::StripAsciiWhitespace(head.substr(start, head.find('\r', start) - start)),
                &length);
          }
          need = head_end + 4 + length;
        }
      }
      if (need != std::string::npos) {
        ++requests_;
        const std::string body = R"({"error":"the store cannot commit"})";
        const std::string reply = absl::StrCat(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            "Retry-After: 1\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
            body);
        (void)::send(conn, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
      ::close(conn);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST_F(DeployTest, NginxTerminatesTlsForASignedPdkDelivery) {
  ASSERT_TRUE(Installed(kNginx));
  ASSERT_TRUE(Installed(kOpenssl));
  // A throwaway certificate for "localhost", which is also its own CA.
  const std::string cert = (dir_ / "cert.pem").string();
  const std::string key = (dir_ / "key.pem").string();
  CommandResult made = RunProgram(
      {kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
       "-addext", "subjectAltName=DNS:localhost"});
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const std::string secret_file = (dir_ / "secret").string();
  WriteFile(secret_file, kSecret);
  auto server = ServerProcess::Start((dir_ / "archive.db").string(),
                                     {"--secret-file", secret_file});
  ASSERT_TRUE(server.ok()) << server.status();

  // The shipped site file, with only addresses and certificate paths changed.
  const int https_port = FreePort();
  ASSERT_GT(https_port, 0);
  std::string site = ReadFile(SourcePath("deploy/nginx/pdk-archive.conf"));
  ASSERT_FALSE(site.empty());
  site = ReplaceOnce(site, "listen 443 ssl;", absl::StrCat("listen 127.0.0.1:", https_port,
                                                            " ssl;"));
  site = ReplaceOnce(site, "listen [::]:443 ssl;", "");
  // Two nodes: one refusing every request with 503, then the real serve.
  RefusingNode refusing;
  ASSERT_GT(refusing.port(), 0);
  site = ReplaceOnce(site, "server 127.0.0.1:8080 ",
                     absl::StrCat("server 127.0.0.1:", refusing.port(),
                                  " max_fails=0;\n    server 127.0.0.1:", server->http_port(),
                                  " "));
  site = ReplaceOnce(site, "/etc/ssl/certs/pdk-archive.pem", cert);
  site = ReplaceOnce(site, "/etc/ssl/private/pdk-archive.key", key);
  ASSERT_FALSE(HasFailure());
  WriteFile(dir_ / "pdk-archive.conf", site);
  // What /etc/nginx/nginx.conf provides around a conf.d file, in the temp dir.
  const std::string d = dir_.string();
  WriteFile(dir_ / "nginx.conf",
            absl::StrCat("daemon off;\nworker_processes 1;\npid ", d, "/nginx.pid;\n",
                         "error_log ", d, "/error.log info;\n",
                         "events { worker_connections 64; }\nhttp {\n",
                         "  access_log ", d, "/access.log;\n",
                         "  client_body_temp_path ", d, "/body;\n  proxy_temp_path ", d,
                         "/proxy;\n  fastcgi_temp_path ", d, "/fastcgi;\n  uwsgi_temp_path ",
                         d, "/uwsgi;\n  scgi_temp_path ", d, "/scgi;\n",
                         "  include ", d, "/pdk-archive.conf;\n}\n"));
  const std::vector<std::string> nginx = {kNginx, "-p", d, "-c", d + "/nginx.conf",
                                          "-e", d + "/error.log"};
  std::vector<std::string> test_argv = nginx;
  test_argv.push_back("-t");
  CommandResult syntax = RunProgram(test_argv);
  ASSERT_EQ(syntax.exit_code, 0) << syntax.out << syntax.err
                                 << ReadFile(dir_ / "error.log");
  auto proxy = Child::Start(nginx, dir_ / "nginx.out");
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  bool listening = false;
  for (int i = 0; i < 200 && !listening; ++i) {
    ASSERT_TRUE((*proxy)->Running()) << ReadFile(dir_ / "error.log")
                                     << ReadFile(dir_ / "nginx.out");
    const int fd = ConnectLoopback(https_port);
    listening = fd >= 0;
    if (fd >= 0) ::close(fd);
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(listening) << ReadFile(dir_ / "error.log");

  // PDK's delivery, signed, with the header spelled X_PDK_SIGNATURE.
  const std::string body = Event("nginx-1", 3);
  const std::string signature = Signature(body);
  auto first = HttpsExchange(https_port, cert, PdkPost("/webhooks", body, signature));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status, 200) << first->head << first->body << ReadFile(dir_ / "error.log");
  EXPECT_EQ(first->body, R"({"sequence":1,"duplicate":false})");
  // Its redelivery is known: the first one is stored.
  auto again = HttpsExchange(https_port, cert, PdkPost("/webhooks", body, signature));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(again->body, R"({"sequence":1,"duplicate":true})");
  // A wrong signature under that header is refused by serve, not nginx.
  auto forged = HttpsExchange(https_port, cert,
                              PdkPost("/webhooks", Event("nginx-2", 3), signature));
  ASSERT_TRUE(forged.ok()) << forged.status();
  EXPECT_EQ(forged->status, 401);
  EXPECT_TRUE(absl::StrContains(forged->body, "\"error\"")) << forged->body;
  // Past serve's 1 MiB, nginx refuses before proxying.
  const std::string big = std::string(R"({"topic":"door.request.allowed","pad":")") +
                          std::string(1100000, 'x') + "\"}";
  auto too_big = HttpsExchange(https_port, cert,
                               PdkPost("/webhooks", big, Signature(big)));
  ASSERT_TRUE(too_big.ok()) << too_big.status();
  EXPECT_EQ(too_big->status, 413);
  // Health goes through; the metrics stay off the public side.
  auto health = HttpsExchange(
      https_port, cert, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200) << health->body;
  auto metrics = HttpsExchange(
      https_port, cert, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 404);

  // nginx retried on the other node what the refusing one answered 503
  // (a POST: proxy_next_upstream's non_idempotent), and every delivery
  // above still got serve's own answer.
  for (int i = 3; i <= 6; ++i) {
    const std::string b = Event(absl::StrCat("nginx-", i), 1);
    auto r = HttpsExchange(https_port, cert, PdkPost("/webhooks", b, Signature(b)));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_TRUE(absl::StrContains(r->body, "\"duplicate\":false")) << r->body;
  }
  EXPECT_GE(refusing.requests(), 2);

  // Read back through the archive's own query API.
  auto events = RunCli({"events", "--server", server->grpc_address(), "--json"});
  EXPECT_EQ(events.exit_code, 0) << events.err;
  EXPECT_TRUE(absl::StrContains(events.out, "\"nginx-1\"")) << events.out;
  EXPECT_TRUE(absl::StrContains(events.out, "\"nginx-6\"")) << events.out;
  EXPECT_FALSE(absl::StrContains(events.out, "\"nginx-2\"")) << events.out;
}

// ---------------------------------------------------------------------------
// The systemd unit, as `cmake --install` writes it.

TEST_F(DeployTest, SystemdAnalyzeAcceptsTheInstalledUnitAndRefusesABrokenOne) {
  ASSERT_TRUE(Installed(kSystemdAnalyze));
  const std::string prefix = (dir_ / "prefix").string();
  CommandResult install = CmakeInstall("", prefix);
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  const fs::path unit = fs::path(prefix) / "lib/systemd/system/pdk-archive.service";
  const std::string text = ReadFile(unit);
  ASSERT_TRUE(absl::StrContains(text, absl::StrCat("\nExecStart=", prefix,
                                                   "/bin/pdk-archive serve --config ")))
      << text;

  // Accepted without a single warning.
  CommandResult verify = RunProgram({kSystemdAnalyze, "verify", unit.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(verify.out + verify.err, "");
  // Hardened: systemd's own exposure score at most 2.0 ("OK") of 10.
  CommandResult security = RunProgram({kSystemdAnalyze, "security", "--offline=true",
                                       "--threshold=20", unit.string()});
  EXPECT_EQ(security.exit_code, 0) << security.out << security.err;
  EXPECT_TRUE(absl::StrContains(security.out, "Overall exposure level")) << security.out;

  // The same check fails on broken units: a binary that is not there, and a
  // value systemd cannot parse.
  const fs::path broken_dir = dir_ / "broken";
  fs::create_directories(broken_dir);
  const fs::path broken = broken_dir / "pdk-archive.service";
  WriteFile(broken, absl::StrReplaceAll(text, {{prefix + "/bin/pdk-archive",
                                                "/nonexistent/bin/pdk-archive"}}));
  CommandResult missing = RunProgram({kSystemdAnalyze, "verify", broken.string()});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(missing.out + missing.err, "/nonexistent/bin/pdk-archive"));
  WriteFile(broken, absl::StrReplaceAll(text, {{"ProtectSystem=strict", "ProtectSystem=strickt"}}));
  CommandResult typo = RunProgram({kSystemdAnalyze, "verify", broken.string()});
  EXPECT_TRUE(absl::StrContains(typo.out + typo.err, "strickt")) << typo.out << typo.err;
}

// ---------------------------------------------------------------------------
// cmake --install into a DESTDIR, as a package build does.

TEST_F(DeployTest, CmakeInstallPutsBinaryUnitAndExampleConfigInPlace) {
  const fs::path root = dir_ / "root";
  CommandResult install = CmakeInstall(root.string(), "/usr");
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;

  const fs::path binary = root / "usr/bin/pdk-archive";
  ASSERT_TRUE(fs::exists(binary)) << install.out;
  EXPECT_EQ(::access(binary.c_str(), X_OK), 0);
  CommandResult help = RunProgram({binary.string(), "serve", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_TRUE(absl::StrContains(help.out, "--config FILE"));

  const std::string unit = ReadFile(root / "usr/lib/systemd/system/pdk-archive.service");
  EXPECT_TRUE(absl::StrContains(
      unit, "\nExecStart=/usr/bin/pdk-archive serve --config /etc/pdk-archive/pdk-archive.toml"))
      << unit;
  const std::string source_unit = ReadFile(SourcePath("deploy/systemd/pdk-archive.service"));
  EXPECT_EQ(absl::StrReplaceAll(unit, {{"/usr/bin/pdk-archive", "/usr/local/bin/pdk-archive"}}),
            source_unit);

  const fs::path config = root / "usr/share/doc/pdk-archive/pdk-archive.toml";
  EXPECT_EQ(ReadFile(config), ReadFile(SourcePath("deploy/pdk-archive.toml")));
  EXPECT_EQ(ReadFile(root / "usr/share/doc/pdk-archive/nginx/pdk-archive.conf"),
            ReadFile(SourcePath("deploy/nginx/pdk-archive.conf")));

  // The example config is one the installed binary accepts: serve parses it
  // (the --help exit proves every key and type), nothing started.
  CommandResult parsed =
      RunProgram({binary.string(), "serve", "--config", config.string(), "--help"});
  EXPECT_EQ(parsed.exit_code, 0) << parsed.err;
}

}  // namespace
}  // namespace pdkarchive
