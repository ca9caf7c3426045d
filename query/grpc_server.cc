#include "query/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <mutex>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "query/access_interceptor.h"
#include "query/event_archive_service.h"

namespace pdkarchive::query {
namespace {

constexpr char kServiceName[] = "pdk.archive.v1.EventArchive";

// Both are process-wide switches in gRPC; flip them once.
void EnableServerPlugins() {
  static std::once_flag once;
  std::call_once(once, [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const std::string& listen_host_port, store::ArchiveReader& reader,
    store::CommitFeed& feed, const GrpcServerOptions& options) {
  absl::StatusOr<std::string> key = reader.PageTokenKey();
  if (!key.ok()) return key.status();
  EnableServerPlugins();

  std::unique_ptr<CallAdmissions> admissions;
  EventArchiveOptions service_options = options.service;
  grpc::ServerBuilder builder;
  if (options.access != nullptr) {
    admissions = std::make_unique<CallAdmissions>();
    service_options.admissions = admissions.get();
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::make_unique<AccessInterceptorFactory>(*options.access, *admissions));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  auto service = std::make_unique<EventArchiveService>(
      reader, feed, *std::move(key), service_options);
  builder.SetMaxReceiveMessageSize(options.max_request_bytes);
  int selected_port = 0;
  builder.AddListeningPort(listen_host_port,
                           options.credentials != nullptr
                               ? options.credentials
                               : grpc::InsecureServerCredentials(),
                           &selected_port);
  builder.RegisterService(service.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || selected_port == 0) {
    return absl::UnavailableError("cannot listen for gRPC on " +
                                  listen_host_port);
  }
  if (grpc::HealthCheckServiceInterface* health =
          server->GetHealthCheckService()) {
    health->SetServingStatus(kServiceName, true);
  }
  auto result = std::unique_ptr<GrpcServer>(
      new GrpcServer(std::move(admissions), std::move(service), selected_port));
  result->server_ = std::move(server);
  return result;
}

GrpcServer::GrpcServer(std::unique_ptr<CallAdmissions> admissions,
                       std::unique_ptr<EventArchiveService> service, int port)
    : admissions_(std::move(admissions)), service_(std::move(service)), port_(port) {}

GrpcServer::~GrpcServer() { Shutdown(); }

void GrpcServer::Shutdown(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  // Streams first: a watch never ends by itself, and Server::Shutdown would
  // otherwise wait the whole grace period for it.
  service_->BeginShutdown();
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  service_->Stop();
}

}  // namespace pdkarchive::query
