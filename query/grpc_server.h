// GrpcServer: runs the EventArchive service on a listening address, with gRPC
// health checking (grpc.health.v1) and server reflection, so grpcurl and
// buf curl work against it.
#ifndef PDKARCHIVE_QUERY_GRPC_SERVER_H_
#define PDKARCHIVE_QUERY_GRPC_SERVER_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "query/event_archive_service.h"
#include "query/query_access.h"
#include "store/archive_reader.h"
#include "store/commit_feed.h"

namespace grpc {
class Server;
class ServerCredentials;
}  // namespace grpc

namespace pdkarchive::query {

// How the server bounds what clients may ask.
struct GrpcServerOptions {
  // The largest request message accepted; larger ones are refused by gRPC
  // with RESOURCE_EXHAUSTED before they are parsed (--grpc-max-request-bytes).
  int max_request_bytes = 256 * 1024;
  // How the port is secured (TLS, mTLS); null = plaintext.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  EventArchiveOptions service;
  // When set, every EventArchive call is authenticated and logged through it
  // (query/access_interceptor.h); health checking and reflection stay open.
  // Not owned; must outlive the server.
  QueryAccess* access = nullptr;
};

// Start and Shutdown may be called from any thread; `reader` and `feed` must
// outlive the server.
class GrpcServer {
 public:
  // Listens on `listen_host_port` ("127.0.0.1:0" picks a free port) and
  // serves. FailedPrecondition when the archive has no page-token key,
  // Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const std::string& listen_host_port, store::ArchiveReader& reader,
      store::CommitFeed& feed, const GrpcServerOptions& options = {});

  // Shuts down if still running.
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // The port actually bound.
  int port() const { return port_; }

  // Ends open WatchEvents/ExportEvents streams with UNAVAILABLE, refuses new
  // calls, gives calls in flight up to `grace` before cancelling them, and
  // returns once everything has stopped. Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  GrpcServer(std::unique_ptr<CallAdmissions> admissions,
             std::unique_ptr<EventArchiveService> service, int port);

  // Declared first: the service and the server's interceptors refer to it.
  std::unique_ptr<CallAdmissions> admissions_;
  // Declared before server_: the server refers to the service, so it must be
  // destroyed first.
  std::unique_ptr<EventArchiveService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_;
  bool stopped_ = false;
};

}  // namespace pdkarchive::query

#endif  // PDKARCHIVE_QUERY_GRPC_SERVER_H_
