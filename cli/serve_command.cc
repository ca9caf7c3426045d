#include "cli/serve_command.h"

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/archive_flags.h"
#include "cli/flags.h"
#include "cli/grpc_security.h"
#include "ingest/http_server.h"
#include "ingest/metrics.h"
#include "ingest/subscription_directory.h"
#include "ingest/webhook_handler.h"
#include "query/grpc_server.h"
#include "query/query_access.h"
#include "store/archive.h"
#include "store/commit_feed.h"
#include "store/group_commit_writer.h"

namespace pdkarchive::cli {
namespace {

constexpr char kDescription[] =
    "Receives PDK webhooks on --http-listen (POST /webhooks and /webhooks/NAME\n"
    "for each of `pdk-archive subscriptions`, GET /healthz,\n"
    "GET /metrics), keeps them in the archive --db (a SQLite file or a\n"
    "PostgreSQL database that several serve nodes may share), and answers\n"
    "queries over gRPC (pdk.archive.v1.EventArchive) on --grpc-listen. Port 0\n"
    "picks a free port; the chosen addresses are printed as \"http listening on\n"
    "HOST:PORT\" and \"grpc listening on HOST:PORT\". SIGTERM or SIGINT stops\n"
    "accepting, commits what was accepted, and exits 0.";

struct ServeConfig {
  ArchiveFlags archive;
  std::string http_listen = "0.0.0.0:8080";
  std::string grpc_listen = "127.0.0.1:50051";
  std::optional<std::string> secret;
  std::optional<std::string> secret_file;
  std::optional<std::string> basic_auth;
  std::optional<std::string> basic_auth_file;
  int64_t max_body_bytes = 1 << 20;
  int64_t max_header_count = 100;
  int64_t max_header_bytes = 16 * 1024;
  int64_t http_threads = 2;
  std::string grpc_tls_cert;
  std::string grpc_tls_key;
  std::string grpc_client_ca;
  bool grpc_insecure = false;
};

// The query API's bounds on work per call (README: "Query limits").
struct QueryLimitFlags {
  int64_t max_count_groups = 100000;
  std::string query_timeout = "30s";
  int64_t max_heavy_queries = 2;
  int64_t max_page_bytes = 3 << 20;
  int64_t watch_buffer_bytes = 16 << 20;
  int64_t grpc_max_request_bytes = 256 << 10;
  int64_t reader_cache_bytes = 8 << 20;

  void Declare(FlagSet& flags) {
    flags.Int("max-count-groups", "N", &max_count_groups,
              "CountEvents with more groups is refused (RESOURCE_EXHAUSTED)");
    flags.String("query-timeout", "DURATION", &query_timeout,
                 "longest a query may run, whatever the client's deadline (e.g. 30s)");
    flags.Int("max-heavy-queries", "N", &max_heavy_queries,
              "counts and export reads running at once; more wait in line");
    flags.Int("max-page-bytes", "N", &max_page_bytes,
              "a ListEvents page ends before the event that would pass this size");
    flags.Int("watch-buffer-bytes", "N", &watch_buffer_bytes,
              "a watcher with more unsent events is ended (RESOURCE_EXHAUSTED)");
    flags.Int("grpc-max-request-bytes", "N", &grpc_max_request_bytes,
              "largest query request accepted (RESOURCE_EXHAUSTED)");
    flags.Int("reader-cache-bytes", "N", &reader_cache_bytes,
              "memory for names (panels, door names) the query side keeps");
  }

  // The options these flags give; InvalidArgument naming a bad flag.
  absl::Status Apply(store::EventReaderOptions& reader, query::GrpcServerOptions& server) const {
    absl::Duration timeout;
    if (!absl::ParseDuration(query_timeout, &timeout) || timeout <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--query-timeout wants a positive duration such as 30s, not \"",
                       query_timeout, "\""));
    }
    for (auto [name, value] : {std::pair{"max-count-groups", max_count_groups},
                               std::pair{"max-heavy-queries", max_heavy_queries},
                               std::pair{"max-page-bytes", max_page_bytes},
                               std::pair{"watch-buffer-bytes", watch_buffer_bytes},
                               std::pair{"grpc-max-request-bytes", grpc_max_request_bytes},
                               std::pair{"reader-cache-bytes", reader_cache_bytes}}) {
      if (value <= 0 || value > (int64_t{1} << 40)) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " must be positive"));
      }
    }
    if (max_heavy_queries > 64 || grpc_max_request_bytes > (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(
          "--max-heavy-queries is at most 64 and --grpc-max-request-bytes at most 1 GiB");
    }
    query::EventArchiveOptions& service = server.service;
    service.max_count_groups = max_count_groups;
    service.query_timeout = absl::ToChronoMilliseconds(timeout);
    service.max_heavy_queries = static_cast<int>(max_heavy_queries);
    service.max_page_bytes = static_cast<size_t>(max_page_bytes);
    service.watch_buffer_bytes = static_cast<size_t>(watch_buffer_bytes);
    server.max_request_bytes = static_cast<int>(grpc_max_request_bytes);
    reader.max_connections = service.reader_connections();
    reader.lookup_connections = 1;
    reader.name_cache_bytes = static_cast<size_t>(reader_cache_bytes);
    return absl::OkStatus();
  }
};


int Fail(const absl::Status& status) {
  std::cerr << "pdk-archive serve: " << status.message() << "\n";
  return 1;
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  ServeConfig config;
  FlagSet flags("pdk-archive serve [flags]", kDescription);
  AddArchiveFlags(flags, &config.archive);
  flags.String("http-listen", "HOST:PORT", &config.http_listen,
               "where PDK delivers webhooks");
  flags.String("grpc-listen", "HOST:PORT", &config.grpc_listen,
               "where the query API listens");
  flags.OptionalString("secret", "SECRET", &config.secret,
                       "HMAC secret of the default subscription (X-PDK-SIGNATURE)");
  flags.OptionalString("secret-file", "PATH", &config.secret_file,
                       "read the secret from this file instead");
  flags.OptionalString("basic-auth", "USER:PASS", &config.basic_auth,
                       "also require HTTP Basic auth with these credentials (for\n"
                       "deliveries and /metrics; /healthz stays open)");
  flags.OptionalString("basic-auth-file", "PATH", &config.basic_auth_file,
                       "read USER:PASS for --basic-auth from this file instead");
  flags.Int("max-body-bytes", "N", &config.max_body_bytes,
            "largest webhook body accepted; larger ones get 413");
  flags.Int("max-header-count", "N", &config.max_header_count,
            "most header fields in a request; more get 431");
  flags.Int("max-header-bytes", "N", &config.max_header_bytes,
            "largest request head (request line and headers); larger gets 431");
  flags.Int("http-threads", "N", &config.http_threads, "HTTP worker threads");
  flags.String("grpc-tls-cert", "FILE", &config.grpc_tls_cert,
               "serve gRPC over TLS with this certificate chain (PEM)");
  flags.String("grpc-tls-key", "FILE", &config.grpc_tls_key,
               "the private key (PEM) of --grpc-tls-cert");
  flags.String("grpc-client-ca", "FILE", &config.grpc_client_ca,
               "also require client certificates signed by a CA in FILE (mTLS)");
  flags.Bool("grpc-insecure", &config.grpc_insecure,
             "allow a non-loopback --grpc-listen without TLS and a token");
  QueryLimitFlags query_limits;
  query_limits.Declare(flags);
  if (absl::Status s = flags.Parse(args); !s.ok()) {
    std::cerr << "pdk-archive serve: " << s.message() << "\n\n" << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (config.secret && config.secret_file) {
    std::cerr << "pdk-archive serve: give --secret or --secret-file, not both\n";
    return 2;
  }
  if (config.secret && config.secret->empty()) {
    std::cerr << "pdk-archive serve: --secret is empty\n";
    return 2;
  }
  if (config.basic_auth && config.basic_auth_file) {
    std::cerr << "pdk-archive serve: give --basic-auth or --basic-auth-file, not both\n";
    return 2;
  }
  if (config.basic_auth && config.basic_auth->find(':') == std::string::npos) {
    std::cerr << "pdk-archive serve: --basic-auth wants USER:PASS\n";
    return 2;
  }
  if (config.max_body_bytes <= 0 || config.http_threads <= 0) {
    std::cerr << "pdk-archive serve: --max-body-bytes and --http-threads must be positive\n";
    return 2;
  }
  if (config.max_header_count <= 0 || config.max_header_bytes <= 0) {
    std::cerr << "pdk-archive serve: --max-header-count and --max-header-bytes must be "
                 "positive\n";
    return 2;
  }
  store::EventReaderOptions reader_options;
  query::GrpcServerOptions grpc_options;
  if (absl::Status s = query_limits.Apply(reader_options, grpc_options); !s.ok()) {
    std::cerr << "pdk-archive serve: " << s.message() << "\n";
    return 2;
  }
  if (config.grpc_tls_cert.empty() != config.grpc_tls_key.empty() ||
      (!config.grpc_client_ca.empty() && config.grpc_tls_cert.empty())) {
    std::cerr << "pdk-archive serve: --grpc-tls-cert and --grpc-tls-key go together, and "
                 "--grpc-client-ca needs them\n";
    return 2;
  }
  // Exposure, in two steps: TLS before anything is opened; whether the
  // archive holds a token once it is (below).
  if (absl::Status s = CheckGrpcExposure(config.grpc_listen, !config.grpc_tls_cert.empty(),
                                         /*holds_token=*/true, config.grpc_insecure);
      !s.ok()) {
    std::cerr << "pdk-archive serve: " << s.message() << "\n";
    return 2;
  }
  if (!config.grpc_tls_cert.empty()) {
    auto credentials = ServerTlsCredentials(config.grpc_tls_cert, config.grpc_tls_key,
                                            config.grpc_client_ca);
    if (!credentials.ok()) return Fail(credentials.status());
    grpc_options.credentials = *std::move(credentials);
  }
  if (config.secret_file) {
    absl::StatusOr<std::string> secret = ReadSecretFile("secret-file", *config.secret_file);
    if (!secret.ok()) return Fail(secret.status());
    config.secret = *secret;
  }
  if (config.basic_auth_file) {
    absl::StatusOr<std::string> credentials =
        ReadSecretFile("basic-auth-file", *config.basic_auth_file);
    if (!credentials.ok()) return Fail(credentials.status());
    if (credentials->find(':') == std::string::npos) {
      std::cerr << "pdk-archive serve: --basic-auth-file " << *config.basic_auth_file
                << " wants USER:PASS\n";
      return 2;
    }
    config.basic_auth = *credentials;
  }

  // Every thread started from here on inherits this mask, so SIGTERM and
  // SIGINT are taken only by the sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  store::ArchiveOptions archive_options;
  archive_options.serve = true;
  absl::StatusOr<std::unique_ptr<store::Archive>> archive =
      OpenArchiveFromFlags(config.archive, archive_options);
  if (!archive.ok()) return Fail(archive.status());
  if (!config.grpc_insecure && !IsLocalAddress(config.grpc_listen)) {
    absl::StatusOr<bool> holds_token = (*archive)->access().HasLiveToken();
    if (!holds_token.ok()) return Fail(holds_token.status());
    if (absl::Status s = CheckGrpcExposure(config.grpc_listen, !config.grpc_tls_cert.empty(),
                                           *holds_token, config.grpc_insecure);
        !s.ok()) {
      std::cerr << "pdk-archive serve: " << s.message() << "\n";
      return 2;
    }
  }
  absl::StatusOr<std::unique_ptr<store::ArchiveReader>> reader =
      (*archive)->OpenReader(reader_options);
  if (!reader.ok()) return Fail(reader.status());

  store::CommitFeed& feed = (*archive)->feed();
  store::GroupCommitWriter writer((*archive)->sink(), feed);
  ingest::Metrics metrics;
  // POST /webhooks/NAME: the archive's subscriptions, reloaded twice a second
  // so a change made on any node is heard here within 5 s.
  absl::StatusOr<std::unique_ptr<ingest::SubscriptionDirectory>> subscriptions =
      ingest::SubscriptionDirectory::Start((*archive)->subscriptions(),
                                           std::chrono::milliseconds(500));
  if (!subscriptions.ok()) return Fail(subscriptions.status());
  ingest::WebhookOptions webhook_options;
  webhook_options.subscriptions = subscriptions->get();
  webhook_options.secret = config.secret;
  webhook_options.basic_auth = config.basic_auth;
  webhook_options.max_body_bytes = static_cast<size_t>(config.max_body_bytes);
  ingest::WebhookHandler handler(webhook_options, writer, metrics);

  // Bearer tokens (required once the archive holds one: see
  // tokens_required()) and the access log of every query call.
  absl::StatusOr<std::unique_ptr<query::QueryAccess>> access =
      query::QueryAccess::Start((*archive)->access());
  if (!access.ok()) return Fail(access.status());
  grpc_options.access = access->get();

  absl::StatusOr<std::unique_ptr<query::GrpcServer>> grpc =
      query::GrpcServer::Start(config.grpc_listen, **reader, feed, grpc_options);
  if (!grpc.ok()) return Fail(grpc.status());

  ingest::HttpServerOptions http_options;
  http_options.threads = static_cast<int>(config.http_threads);
  http_options.max_body_bytes = static_cast<size_t>(config.max_body_bytes);
  http_options.max_header_count = static_cast<size_t>(config.max_header_count);
  http_options.max_header_bytes = static_cast<size_t>(config.max_header_bytes);
  absl::StatusOr<std::unique_ptr<ingest::HttpServer>> http =
      ingest::HttpServer::Start(config.http_listen, handler, http_options);
  if (!http.ok()) return Fail(http.status());
  if (!config.secret) {
    // The address as bound: with port 0 the configured one names no port.
    std::cerr << "pdk-archive serve: WARNING: no --secret or --secret-file given; "
                 "deliveries are accepted unsigned, so anyone who can reach "
              << (*http)->address() << " can write to the archive\n";
  }

  std::cout << "http listening on " << (*http)->address() << "\n"
            << "grpc listening on "
            << config.grpc_listen.substr(0, config.grpc_listen.rfind(':')) << ":"
            << (*grpc)->port() << "\n"
            << std::flush;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "pdk-archive serve: " << (signal_number == SIGINT ? "SIGINT" : "SIGTERM")
            << ", shutting down\n";

  // Refuse new deliveries (503: PDK retries), commit and answer those already
  // accepted while the HTTP threads can still send, then close everything.
  handler.StopAccepting();
  writer.Stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  (*http)->Shutdown();
  (*grpc)->Shutdown();
  (*access)->Stop();  // writes the last calls' access records
  return 0;
}

}  // namespace pdkarchive::cli
