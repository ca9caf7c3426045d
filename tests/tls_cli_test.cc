// Query access over the network (issue 15), through the real binary and real
// gRPC: `serve` with TLS and mTLS, the rule that keeps an unprotected query
// port on loopback, and the client commands (events, count, export, get,
// watch) with their TLS and token flags, relative times and table.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "tests/test_support/http_client.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/tls_certs.h"

namespace pdkarchive {
namespace {

using testing::CommandResult;
using testing::RunCli;
using testing::ServerProcess;
using testing::SignedHeaders;
using testing::TlsFiles;

constexpr char kSecret[] = "tls-cli-test-secret";
constexpr int64_t kHourMs = 3600 * 1000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Payload(int i, int64_t occurred,
                    const std::string& topic = "door.request.allowed",
                    const std::string& door_name = "Door 3") {
  return absl::StrCat(
      R"({"id":"tls-)", i, R"(","body":{"doorId":3,"personId":17},)",
      R"("metadata":{"occurred":)", occurred, R"(,"doorName":")", door_name,
      R"("},"panelId":"1070000","topic":")", topic, R"("})");
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// The index, in code points, of byte `at` of UTF-8 `text`.
size_t Column(const std::string& text, size_t at) {
  size_t n = 0;
  for (size_t i = 0; i < at && i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++n;
  }
  return n;
}

class TlsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat(
               "pdkarchive-tls-", ::getpid(), "-",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "archive.db").string();
    absl::StatusOr<TlsFiles> files = testing::WriteTlsCertificates(dir_);
    ASSERT_TRUE(files.ok()) << files.status();
    tls_ = *files;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Delivers `body`, signed; returns its sequence.
  int64_t Deliver(const ServerProcess& server, const std::string& body) {
    auto reply = testing::HttpRequest(server.http_port(), "POST", "/webhooks",
                                      body, SignedHeaders(kSecret, body));
    EXPECT_TRUE(reply.ok());
    if (!reply.ok()) return -1;
    EXPECT_EQ(reply->status, 200) << reply->body;
    return testing::SequenceInReply(reply->body);
  }

  absl::StatusOr<ServerProcess> StartTls(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--secret",        kSecret,
                                     "--grpc-tls-cert", tls_.server_cert,
                                     "--grpc-tls-key",  tls_.server_key};
    args.insert(args.end(), extra.begin(), extra.end());
    return ServerProcess::Start(db_, args);
  }

  std::filesystem::path dir_;
  std::string db_;
  TlsFiles tls_;
};

TEST_F(TlsCliTest, HelpNamesTheNewCommandsAndFlags) {
  CommandResult top = RunCli({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(top.out, "  get ")) << top.out;
  EXPECT_TRUE(absl::StrContains(top.out, "  watch ")) << top.out;
  for (const char* command : {"events", "count", "export", "get", "watch"}) {
    CommandResult help = RunCli({command, "--help"});
    EXPECT_EQ(help.exit_code, 0) << command;
    for (const char* flag : {"--server", "--tls ", "--tls-ca", "--tls-cert",
                             "--tls-key", "--token-file", "PDKARCHIVE_TOKEN"}) {
      EXPECT_TRUE(absl::StrContains(help.out, flag)) << command << " " << flag;
    }
  }
  CommandResult watch = RunCli({"watch", "--help"});
  EXPECT_TRUE(absl::StrContains(watch.out, "--after")) << watch.out;
  EXPECT_TRUE(absl::StrContains(watch.out, "yesterday")) << watch.out;
  CommandResult serve = RunCli({"serve", "--help"});
  for (const char* flag : {"--grpc-tls-cert", "--grpc-tls-key",
                           "--grpc-client-ca", "--grpc-insecure"}) {
    EXPECT_TRUE(absl::StrContains(serve.out, flag)) << flag;
  }
}

TEST_F(TlsCliTest,
       TlsServerRefusesPlaintextAndServesEveryClientCommandOverTls) {
  auto server = StartTls();
  ASSERT_TRUE(server.ok()) << server.status();
  const int64_t now = NowMs();
  const std::string body = Payload(1, now - kHourMs);
  const int64_t sequence = Deliver(*server, body);
  ASSERT_GT(sequence, 0);
  const std::string addr = server->grpc_address();

  CommandResult plain = RunCli({"events", "--server", addr});
  EXPECT_EQ(plain.exit_code, 1) << plain.out;
  EXPECT_EQ(plain.out, "") << "nothing on stdout before the first reply";
  EXPECT_TRUE(absl::StrContains(plain.err, "--tls-ca")) << plain.err;

  const std::vector<std::string> tls = {"--server", addr, "--tls-ca",
                                        tls_.ca_cert};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), tls.begin(), tls.end());
    return args;
  };
  CommandResult events = RunCli(with({"events", "--json"}));
  ASSERT_EQ(events.exit_code, 0) << events.err;
  EXPECT_TRUE(absl::StrContains(events.out, "\"event_id\":\"tls-1\""))
      << events.out;

  // The certificate names localhost too. Resolved with getaddrinfo: gRPC's
  // default resolver, c-ares (Debian's 1.18), leaks 10 bytes that
  // LeakSanitizer turns into exit status 1 under PDKARCHIVE_SANITIZE.
  ::setenv("GRPC_DNS_RESOLVER", "native", 1);
  CommandResult by_name = RunCli(
      {"events", "--server", absl::StrCat("localhost:", server->grpc_port()),
       "--tls-ca", tls_.ca_cert});
  ::unsetenv("GRPC_DNS_RESOLVER");
  ASSERT_EQ(by_name.exit_code, 0) << by_name.err;
  EXPECT_TRUE(absl::StrContains(by_name.out, "door.request.allowed"))
      << by_name.out;

  CommandResult count = RunCli(with({"count", "--by", "door", "--json"}));
  ASSERT_EQ(count.exit_code, 0) << count.err;
  EXPECT_TRUE(absl::StrContains(count.out, R"({"key":["3"],"count":"1"})"))
      << count.out;

  CommandResult exported = RunCli(with({"export", "--raw"}));
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_TRUE(absl::StrContains(exported.out, "tls-1")) << exported.out;

  CommandResult get = RunCli(with({"get", absl::StrCat(sequence)}));
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_TRUE(absl::StrContains(get.out, body)) << get.out;

  // --tls verifies with the default roots: not our throwaway CA, unless
  // gRPC's variable points there.
  ::unsetenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH");
  CommandResult default_roots = RunCli({"events", "--server", addr, "--tls"});
  EXPECT_EQ(default_roots.exit_code, 1) << default_roots.out;
  ::setenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", tls_.ca_cert.c_str(), 1);
  CommandResult our_roots =
      RunCli({"events", "--server", addr, "--tls", "--json"});
  ::unsetenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH");
  EXPECT_EQ(our_roots.exit_code, 0) << our_roots.err;
  EXPECT_TRUE(absl::StrContains(our_roots.out, "tls-1")) << our_roots.out;

  // A CA that did not sign the server's certificate is refused.
  const std::filesystem::path other = dir_ / "other";
  std::filesystem::create_directories(other);
  auto other_files = testing::WriteTlsCertificates(other);
  ASSERT_TRUE(other_files.ok()) << other_files.status();
  CommandResult wrong_ca =
      RunCli({"events", "--server", addr, "--tls-ca", other_files->ca_cert});
  EXPECT_EQ(wrong_ca.exit_code, 1);
  EXPECT_EQ(wrong_ca.out, "");

  auto code = server->Stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << server->Stderr();
}

TEST_F(TlsCliTest, MutualTlsRefusesAClientWithoutACertificate) {
  auto server = StartTls({"--grpc-client-ca", tls_.ca_cert});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT(Deliver(*server, Payload(1, NowMs())), 0);
  const std::string addr = server->grpc_address();

  CommandResult no_cert =
      RunCli({"events", "--server", addr, "--tls-ca", tls_.ca_cert});
  EXPECT_EQ(no_cert.exit_code, 1) << no_cert.out;
  EXPECT_EQ(no_cert.out, "");
  EXPECT_TRUE(absl::StrContains(no_cert.err, "--tls-cert")) << no_cert.err;

  // The server's own certificate is not a client certificate (serverAuth only).
  CommandResult cert = RunCli({"events", "--server", addr, "--tls-ca",
                               tls_.ca_cert, "--tls-cert", tls_.client_cert,
                               "--tls-key", tls_.client_key, "--json"});
  ASSERT_EQ(cert.exit_code, 0) << cert.err;
  EXPECT_TRUE(absl::StrContains(cert.out, "\"event_id\":\"tls-1\""))
      << cert.out;

  CommandResult half = RunCli({"events", "--server", addr, "--tls-ca",
                               tls_.ca_cert, "--tls-cert", tls_.client_cert});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(half.err, "--tls-key")) << half.err;
}

// TLS and a token in the archive: serve takes a non-loopback address, and a
// client needs both the CA and the token.
TEST_F(TlsCliTest, ServeTakesANonLoopbackAddressWithTlsAndAToken) {
  CommandResult created = RunCli({"tokens", "create", "dashboard", "--db", db_});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string token = created.out.substr(0, created.out.find('\n'));
  const std::string token_file = (dir_ / "token").string();
  std::ofstream(token_file) << token << "\n";

  auto server = StartTls({"--grpc-listen", "0.0.0.0:0"});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT(Deliver(*server, Payload(1, NowMs())), 0);
  CommandResult listed = RunCli({"events", "--server", server->grpc_address(), "--tls-ca",
                                 tls_.ca_cert, "--token-file", token_file, "--json"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(absl::StrContains(listed.out, "tls-1")) << listed.out;
  CommandResult no_token = RunCli(
      {"events", "--server", server->grpc_address(), "--tls-ca", tls_.ca_cert, "--json"});
  EXPECT_NE(no_token.exit_code, 0);
  EXPECT_FALSE(absl::StrContains(no_token.out, "tls-1")) << no_token.out;
  EXPECT_EQ(server->Stop(SIGTERM).value_or(-1), 0);
}

TEST_F(TlsCliTest, ServeRefusesAnUnprotectedNonLoopbackAddress) {
  CommandResult open =
      RunCli({"serve", "--db", db_, "--http-listen", "127.0.0.1:0",
              "--grpc-listen", "0.0.0.0:0", "--secret", kSecret},
             std::chrono::seconds(20));
  EXPECT_EQ(open.exit_code, 2) << open.out;
  EXPECT_TRUE(absl::StrContains(open.err, "--grpc-insecure")) << open.err;
  EXPECT_TRUE(absl::StrContains(open.err, "0.0.0.0:0")) << open.err;
  EXPECT_EQ(open.out, "");

  // TLS alone is not enough: the archive holds no token.
  CommandResult tls_only =
      RunCli({"serve", "--db", db_, "--http-listen", "127.0.0.1:0",
              "--grpc-listen", "[::]:0", "--secret", kSecret, "--grpc-tls-cert",
              tls_.server_cert, "--grpc-tls-key", tls_.server_key},
             std::chrono::seconds(20));
  EXPECT_EQ(tls_only.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(tls_only.err, "token")) << tls_only.err;

  // A key that is not the certificate's is named.
  CommandResult mismatched = RunCli(
      {"serve", "--db", db_, "--http-listen", "127.0.0.1:0", "--grpc-listen",
       "127.0.0.1:0", "--secret", kSecret, "--grpc-tls-cert", tls_.server_cert,
       "--grpc-tls-key", tls_.client_key},
      std::chrono::seconds(20));
  EXPECT_EQ(mismatched.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(mismatched.err, tls_.client_key))
      << mismatched.err;

  auto insecure = ServerProcess::Start(
      db_,
      {"--secret", kSecret, "--grpc-listen", "0.0.0.0:0", "--grpc-insecure"});
  ASSERT_TRUE(insecure.ok()) << insecure.status();
  ASSERT_GT(Deliver(*insecure, Payload(1, NowMs())), 0);
  CommandResult events =
      RunCli({"events", "--server", insecure->grpc_address(), "--json"});
  EXPECT_EQ(events.exit_code, 0) << events.err;
  EXPECT_TRUE(absl::StrContains(events.out, "tls-1")) << events.out;
  auto code = insecure->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

// Starts the binary with `args`, its stdout and stderr going to files.
pid_t Spawn(const std::vector<std::string>& args, const std::string& out_path,
            const std::string& err_path) {
  const std::string binary = testing::BinaryPath();
  std::vector<std::string> all = {binary};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : all) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, binary.c_str(), &actions, nullptr,
                                argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return error == 0 ? pid : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Waits up to 20 s for `path` to contain `needle`.
bool WaitForText(const std::string& path, const std::string& needle) {
  for (int i = 0; i < 400; ++i) {
    if (absl::StrContains(ReadFile(path), needle)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST_F(TlsCliTest,
       WatchPrintsAnEventCommittedAfterItStartedAndEndsCleanlyOnSignals) {
  auto server = StartTls();
  ASSERT_TRUE(server.ok()) << server.status();
  const int64_t now = NowMs();
  int64_t last = Deliver(*server, Payload(1, now - kHourMs));
  ASSERT_GT(last, 0);
  for (int signal_number : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    const std::string out = (dir_ / "watch.out").string();
    const std::string err = (dir_ / "watch.err").string();
    const bool json = signal_number == SIGINT;
    std::vector<std::string> args = {
        "watch",  "--server", server->grpc_address(), "--tls-ca", tls_.ca_cert,
        "--door", "3"};
    if (json) args.push_back("--json");
    const pid_t watch = Spawn(args, out, err);
    ASSERT_GT(watch, 0);
    // How the output shows an event's sequence number.
    auto shown = [json](int64_t sequence) {
      return json ? absl::StrCat("\"sequence\":\"", sequence, "\"")
                  : absl::StrCat("\n", sequence, " ");
    };
    // The backlog first: then the watch is surely following.
    ASSERT_TRUE(WaitForText(out, shown(last)))
        << ReadFile(out) << ReadFile(err);
    const int id = signal_number == SIGINT ? 2 : 3;
    last = Deliver(*server, Payload(id, now, "door.alarm.forced"));
    ASSERT_GT(last, 0);
    EXPECT_TRUE(WaitForText(out, shown(last)))
        << ReadFile(out) << ReadFile(err);
    ::kill(watch, signal_number);
    int status = 0;
    for (int i = 0; i < 400 && ::waitpid(watch, &status, WNOHANG) != watch;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (i == 399) {
        ::kill(watch, SIGKILL);
        ::waitpid(watch, &status, 0);
        ADD_FAILURE() << "watch did not end";
      }
    }
    EXPECT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << ReadFile(err);
    if (!json) {
      EXPECT_TRUE(absl::StartsWith(ReadFile(out), "SEQUENCE")) << ReadFile(out);
    }
  }
}

TEST_F(TlsCliTest, WatchResumesAfterTheServerRestarts) {
  auto first = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = first->grpc_port();
  const int64_t now = NowMs();
  const int64_t one = Deliver(*first, Payload(1, now));
  ASSERT_GT(one, 0);
  const std::string out = (dir_ / "watch.out").string();
  const std::string err = (dir_ / "watch.err").string();
  const pid_t watch =
      Spawn({"watch", "--server", first->grpc_address(), "--json"}, out, err);
  ASSERT_GT(watch, 0);
  ASSERT_TRUE(WaitForText(out, "\"tls-1\"")) << ReadFile(out) << ReadFile(err);
  auto code = first->Stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_TRUE(WaitForText(err, "resuming after sequence 1")) << ReadFile(err);

  auto second = ServerProcess::Start(db_, {"--secret", kSecret, "--grpc-listen",
                                           absl::StrCat("127.0.0.1:", port)});
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_GT(Deliver(*second, Payload(2, now)), one);
  EXPECT_TRUE(WaitForText(out, "\"tls-2\"")) << ReadFile(out) << ReadFile(err);
  ::kill(watch, SIGINT);
  int status = 0;
  for (int i = 0; i < 400 && ::waitpid(watch, &status, WNOHANG) != watch; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (i == 399) {
      ::kill(watch, SIGKILL);
      ::waitpid(watch, &status, 0);
      ADD_FAILURE() << "watch did not end";
    }
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << status << ReadFile(err);
  // Each event once: the resumed watch starts after the last one printed.
  EXPECT_EQ(Lines(ReadFile(out)).size(), 2u) << ReadFile(out);
}

TEST_F(TlsCliTest, GetPrintsTheRawPayloadAndNamesAMissingEvent) {
  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string body =
      Payload(1, NowMs(), "door.request.allowed", "Front \\u00e9 door");
  const int64_t sequence = Deliver(*server, body);
  ASSERT_GT(sequence, 0);
  const std::string addr = server->grpc_address();

  CommandResult text =
      RunCli({"get", absl::StrCat(sequence), "--server", addr});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(absl::StrContains(text.out, absl::StrCat("raw:\n", body, "\n")))
      << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, "door.request.allowed")) << text.out;

  CommandResult json =
      RunCli({"get", absl::StrCat(sequence), "--server", addr, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(Lines(json.out).size(), 1u) << json.out;
  EXPECT_TRUE(
      absl::StrContains(json.out, "\"raw\":\"{\\\"id\\\":\\\"tls-1\\\""))
      << json.out;

  CommandResult missing = RunCli({"get", "999", "--server", addr});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(missing.err, "no event with sequence 999"))
      << missing.err;
  EXPECT_EQ(missing.out, "");

  EXPECT_EQ(RunCli({"get", "--server", addr}).exit_code, 2);
  EXPECT_EQ(RunCli({"get", "x1", "--server", addr}).exit_code, 2);
}

TEST_F(TlsCliTest, RelativeTimesSelectWhatTheySay) {
  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  const int64_t now = NowMs();
  ASSERT_GT(Deliver(*server, Payload(1, now - 2 * kHourMs)), 0);
  ASSERT_GT(Deliver(*server, Payload(2, now - 72 * kHourMs)), 0);
  const std::string addr = server->grpc_address();
  auto ids = [&](std::vector<std::string> filter) {
    std::vector<std::string> args = {"events", "--server", addr, "--json"};
    args.insert(args.end(), filter.begin(), filter.end());
    CommandResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(filter, " ") << ": " << r.err;
    std::string found;
    for (const std::string& line : Lines(r.out)) {
      found += absl::StrContains(line, "\"tls-1\"") ? "1" : "2";
    }
    return found;
  };
  EXPECT_EQ(ids({"--from", "yesterday"}), "1");
  EXPECT_EQ(ids({"--from", "24h"}), "1");
  EXPECT_EQ(ids({"--from", "7d"}), "21");
  EXPECT_EQ(ids({"--from", "4d", "--to", "2d"}), "2");
  EXPECT_EQ(ids({"--from", "NOW"}), "");
  EXPECT_EQ(ids({"--to", "now"}), "21");
  EXPECT_EQ(ids({"--from", "180m", "--to", "60m"}), "1");
  EXPECT_EQ(ids({"--to", "today", "--from", "yesterday"}).find('1') ==
                std::string::npos,
            now - 2 * kHourMs >= (now / (24 * kHourMs)) * 24 * kHourMs);

  for (const char* bad : {"3 fortnights", "0m", "-5m", "15x", "99999999999d"}) {
    CommandResult r = RunCli({"events", "--server", addr, "--from", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_TRUE(absl::StrContains(r.err, "--from")) << bad << ": " << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "15m")) << bad << ": " << r.err;
    EXPECT_EQ(r.out, "");
  }
  CommandResult watch =
      RunCli({"watch", "--server", addr, "--to", "last week"});
  EXPECT_EQ(watch.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(watch.err, "--to")) << watch.err;
}

TEST_F(TlsCliTest, EventsTableKeepsItsColumnsWithLongTopicsAndNames) {
  auto server = ServerProcess::Start(db_, {"--secret", kSecret});
  ASSERT_TRUE(server.ok()) << server.status();
  const int64_t now = NowMs();
  const std::string medium =
      "door.request.allowed.after.a.second.factor";  // 42: fits
  const std::string longest =
      std::string("door.request.") + std::string(70, 'x');
  ASSERT_GT(Deliver(*server, Payload(1, now - 3000, "door.request.allowed")),
            0);
  ASSERT_GT(Deliver(*server,
                    Payload(2, now - 2000, medium,
                            "Salle de réunion du troisième étage, aile nord")),
            0);
  ASSERT_GT(Deliver(*server, Payload(3, now - 1000, longest)), 0);

  CommandResult table = RunCli({"events", "--server", server->grpc_address()});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  std::vector<std::string> lines = Lines(table.out);
  ASSERT_EQ(lines.size(), 4u) << table.out;
  const size_t panel = Column(lines[0], lines[0].find("PANEL"));
  const size_t person = Column(lines[0], lines[0].find("PERSON"));
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(Column(lines[i], lines[i].find("1070000")), panel) << table.out;
    EXPECT_EQ(Column(lines[i], lines[i].rfind("17")), person) << table.out;
  }
  EXPECT_TRUE(absl::StrContains(lines[2], medium + " "))
      << "sized to the content: " << lines[2];
  EXPECT_FALSE(absl::StrContains(lines[3], longest)) << lines[3];
  EXPECT_TRUE(absl::StrContains(lines[3], "door.request.xxx")) << lines[3];
  EXPECT_TRUE(absl::StrContains(lines[3], "… "))
      << "cut with an ellipsis: " << lines[3];
  EXPECT_TRUE(absl::StrContains(lines[2], "Salle de réunion")) << lines[2];

  // count's table takes each column as wide as its widest key.
  CommandResult count = RunCli(
      {"count", "--server", server->grpc_address(), "--by", "topic,door"});
  ASSERT_EQ(count.exit_code, 0) << count.err;
  lines = Lines(count.out);
  ASSERT_EQ(lines.size(), 5u) << count.out;
  const size_t door = lines[0].find("door");
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(lines[i].find(" 3 "), door - 1) << count.out;
  }
  EXPECT_TRUE(absl::StrContains(count.out, longest + "  3")) << count.out;
}

TEST_F(TlsCliTest, NothingIsPrintedBeforeAConnectionError) {
  for (const char* command : {"events", "count", "watch", "get"}) {
    std::vector<std::string> args = {command, "--server", "127.0.0.1:1"};
    if (std::string(command) == "get") args.push_back("1");
    CommandResult r = RunCli(args, std::chrono::seconds(90));
    EXPECT_EQ(r.exit_code, 1) << command;
    EXPECT_EQ(r.out, "") << command;
    EXPECT_TRUE(absl::StrContains(r.err, "unavailable"))
        << command << ": " << r.err;
  }
}

// An EventArchive that answers GetEvent with the call's authorization header
// as the event's raw payload: what the client really sent.
class AuthorizationEcho final : public pdk::archive::v1::EventArchive::Service {
  grpc::Status GetEvent(grpc::ServerContext* context,
                        const pdk::archive::v1::GetEventRequest*,
                        pdk::archive::v1::Event* event) override {
    const auto& metadata = context->client_metadata();
    auto it = metadata.find("authorization");
    event->set_sequence(1);
    event->set_raw(it == metadata.end()
                       ? "(none)"
                       : std::string(it->second.data(), it->second.size()));
    return grpc::Status::OK;
  }
};

TEST_F(TlsCliTest, ClientsSendTheTokenFromAFileOrTheEnvironment) {
  AuthorizationEcho echo;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&echo);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  const std::string addr = absl::StrCat("127.0.0.1:", port);

  ::unsetenv("PDKARCHIVE_TOKEN");
  CommandResult none = RunCli({"get", "1", "--server", addr});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_TRUE(absl::StrContains(none.out, "raw:\n(none)")) << none.out;

  const std::string token_file = (dir_ / "token").string();
  std::ofstream(token_file) << "pdk_file-token-123\n";
  CommandResult from_file =
      RunCli({"get", "1", "--server", addr, "--token-file", token_file});
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_TRUE(
      absl::StrContains(from_file.out, "raw:\nBearer pdk_file-token-123\n"))
      << from_file.out;

  ::setenv("PDKARCHIVE_TOKEN", "pdk_env-token-456", 1);
  CommandResult from_env = RunCli({"get", "1", "--server", addr});
  // The file wins over the environment.
  CommandResult both =
      RunCli({"get", "1", "--server", addr, "--token-file", token_file});
  ::unsetenv("PDKARCHIVE_TOKEN");
  ASSERT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_TRUE(
      absl::StrContains(from_env.out, "raw:\nBearer pdk_env-token-456\n"))
      << from_env.out;
  EXPECT_TRUE(absl::StrContains(both.out, "Bearer pdk_file-token-123"))
      << both.out;

  // Over plaintext to a non-loopback address (0.0.0.0 reaches this machine,
  // refused at once) the token is sent with a warning.
  CommandResult remote =
      RunCli({"get", "1", "--server", "0.0.0.0:1", "--token-file", token_file},
             std::chrono::seconds(90));
  EXPECT_TRUE(absl::StrContains(remote.err, "WARNING: sending the token"))
      << remote.err;
  EXPECT_FALSE(absl::StrContains(from_file.err, "WARNING")) << from_file.err;

  CommandResult missing = RunCli(
      {"get", "1", "--server", addr, "--token-file", (dir_ / "nope").string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(missing.err, "--token-file")) << missing.err;
  std::ofstream(token_file, std::ios::trunc) << "\n";
  CommandResult empty =
      RunCli({"get", "1", "--server", addr, "--token-file", token_file});
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(empty.err, "no token")) << empty.err;
  server->Shutdown();
}

}  // namespace
}  // namespace pdkarchive
