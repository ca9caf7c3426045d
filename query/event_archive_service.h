// EventArchiveService: the gRPC EventArchive service (pdk.archive.v1) over
// the store's EventReader, on gRPC's callback API. Unary calls read inline on
// gRPC's callback threads; ExportEvents streams CSV in ~64 KiB chunks from a
// keyset scan; WatchEvents sends the backlog, then rows as the writer
// publishes commits on the CommitFeed, reading them on one helper thread.
#ifndef PDKARCHIVE_QUERY_EVENT_ARCHIVE_SERVICE_H_
#define PDKARCHIVE_QUERY_EVENT_ARCHIVE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "query/page_token.h"
#include "store/commit_feed.h"
#include "store/event_reader.h"

namespace pdkarchive::query {

// Converts between the two status types (their codes are the same).
grpc::Status ToGrpcStatus(const absl::Status& status);

// A server-streaming call the service can end at shutdown.
class StreamCall {
 public:
  virtual ~StreamCall() = default;
  // Finishes the call with UNAVAILABLE as soon as no write is in flight.
  virtual void EndForShutdown() = 0;
};

class WatchHub;

// Thread-safe. `reader` and `feed` must outlive the service. Shut down in
// this order: BeginShutdown(), the grpc::Server's Shutdown and Wait, then
// Stop() (or destroy the service).
class EventArchiveService final
    : public pdk::archive::v1::EventArchive::CallbackService {
 public:
  // `page_token_key` signs page tokens (EventReader::PageTokenKey()).
  EventArchiveService(store::EventReader& reader, store::CommitFeed& feed,
                      std::string page_token_key);
  ~EventArchiveService() override;
  EventArchiveService(const EventArchiveService&) = delete;
  EventArchiveService& operator=(const EventArchiveService&) = delete;

  // The unary calls as plain functions, free of transport types but for the
  // messages: InvalidArgument or NotFound as the API describes.
  absl::Status List(const pdk::archive::v1::ListEventsRequest& request,
                    pdk::archive::v1::ListEventsResponse* response);
  absl::Status Get(const pdk::archive::v1::GetEventRequest& request,
                   pdk::archive::v1::Event* response);
  absl::Status Count(const pdk::archive::v1::CountEventsRequest& request,
                     pdk::archive::v1::CountEventsResponse* response);

  // gRPC callback entry points (the using-declarations keep the generated
  // synchronous overloads, which answer UNIMPLEMENTED, visible).
  using pdk::archive::v1::EventArchive::CallbackService::CountEvents;
  using pdk::archive::v1::EventArchive::CallbackService::ExportEvents;
  using pdk::archive::v1::EventArchive::CallbackService::GetEvent;
  using pdk::archive::v1::EventArchive::CallbackService::ListEvents;
  using pdk::archive::v1::EventArchive::CallbackService::WatchEvents;
  grpc::ServerUnaryReactor* ListEvents(
      grpc::CallbackServerContext* context,
      const pdk::archive::v1::ListEventsRequest* request,
      pdk::archive::v1::ListEventsResponse* response) override;
  grpc::ServerUnaryReactor* GetEvent(
      grpc::CallbackServerContext* context,
      const pdk::archive::v1::GetEventRequest* request,
      pdk::archive::v1::Event* response) override;
  grpc::ServerUnaryReactor* CountEvents(
      grpc::CallbackServerContext* context,
      const pdk::archive::v1::CountEventsRequest* request,
      pdk::archive::v1::CountEventsResponse* response) override;
  grpc::ServerWriteReactor<pdk::archive::v1::ExportEventsResponse>*
  ExportEvents(grpc::CallbackServerContext* context,
               const pdk::archive::v1::ExportEventsRequest* request) override;
  grpc::ServerWriteReactor<pdk::archive::v1::Event>* WatchEvents(
      grpc::CallbackServerContext* context,
      const pdk::archive::v1::WatchEventsRequest* request) override;

  // Ends every open export and watch with UNAVAILABLE and refuses new ones.
  // Idempotent.
  void BeginShutdown();
  // Waits for the watch helper thread to finish its work and joins it. Call
  // after the server has shut down. Idempotent.
  void Stop();

  // For the streaming calls: their dependencies and shutdown registration.
  // Register returns false once shutdown has begun.
  store::EventReader& reader() { return reader_; }
  store::CommitFeed& feed() { return feed_; }
  WatchHub& hub() { return *hub_; }
  bool Register(StreamCall* call);
  void Unregister(StreamCall* call);

 private:
  store::EventReader& reader_;
  store::CommitFeed& feed_;
  const PageTokenCodec tokens_;
  std::unique_ptr<WatchHub> hub_;

  std::mutex streams_mu_;
  std::set<StreamCall*> streams_;
  bool shutting_down_ = false;
};

}  // namespace pdkarchive::query

#endif  // PDKARCHIVE_QUERY_EVENT_ARCHIVE_SERVICE_H_
