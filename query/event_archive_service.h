// EventArchiveService: the gRPC EventArchive service (pdk.archive.v1) over
// the store's ArchiveReader, on gRPC's callback API. GetEvent reads inline on
// gRPC's callback threads (on the reader's lookup connections); ListEvents
// runs on a small pool of list threads, and CountEvents and each chunk of an
// ExportEvents on a pool of `max_heavy_queries` threads, so neither can hold
// up gRPC's threads or each other. ExportEvents streams CSV in ~256 KiB
// chunks from a keyset scan; WatchEvents sends the backlog, then rows as the
// writer publishes commits on the CommitFeed, reading them on one helper
// thread.
//
// Every query runs under a deadline: the client's, capped at
// `query_timeout` (for a stream, each read it makes). Past it the query is
// interrupted inside SQLite: DEADLINE_EXCEEDED; a client that goes away
// interrupts it the same way (CANCELLED).
#ifndef PDKARCHIVE_QUERY_EVENT_ARCHIVE_SERVICE_H_
#define PDKARCHIVE_QUERY_EVENT_ARCHIVE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "query/page_token.h"
#include "store/archive_reader.h"
#include "store/commit_feed.h"

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
class QueryPool;
class CallAdmissions;

// The service's bounds on work per call (the `serve` flags of the same
// names set them).
struct EventArchiveOptions {
  // CountEvents with more groups: RESOURCE_EXHAUSTED (--max-count-groups).
  int64_t max_count_groups = 100000;
  // The longest a query runs, whatever the client's deadline (--query-timeout).
  std::chrono::milliseconds query_timeout = std::chrono::seconds(30);
  // Counts and export reads running at once (--max-heavy-queries); more wait
  // in line within their deadline, up to kMaxWaitingQueries per pool.
  int max_heavy_queries = 2;
  // ListEvents running at once; more wait in line the same way.
  int list_threads = 2;
  // A ListEvents page ends before the event that would take it past this
  // many bytes (at least one event is sent) (--max-page-bytes).
  size_t max_page_bytes = 3 << 20;
  // A live watcher whose events waiting to be sent pass this many bytes is
  // ended with RESOURCE_EXHAUSTED (--watch-buffer-bytes).
  size_t watch_buffer_bytes = 16 << 20;
  // When set, every call starts by asking it whether the call was admitted
  // (query/access_interceptor.h) and ends at once with its refusal if not.
  // Not owned; must outlive the service.
  const CallAdmissions* admissions = nullptr;

  // Reader connections the service can keep busy at once: one per heavy and
  // list thread, one for the watch reads and one kept for lookups.
  int reader_connections() const {
    return max_heavy_queries + list_threads + 2;
  }
};

// Calls that may wait in one pool's line; past it, RESOURCE_EXHAUSTED.
inline constexpr size_t kMaxWaitingQueries = 64;

// Thread-safe. `reader` and `feed` must outlive the service. Shut down in
// this order: BeginShutdown(), the grpc::Server's Shutdown and Wait, then
// Stop() (or destroy the service).
class EventArchiveService final
    : public pdk::archive::v1::EventArchive::CallbackService {
 public:
  // `page_token_key` signs page tokens (ArchiveReader::PageTokenKey()).
  EventArchiveService(store::ArchiveReader& reader, store::CommitFeed& feed,
                      std::string page_token_key,
                      const EventArchiveOptions& options = {});
  ~EventArchiveService() override;
  EventArchiveService(const EventArchiveService&) = delete;
  EventArchiveService& operator=(const EventArchiveService&) = delete;

  // The unary calls as plain functions, free of transport types but for the
  // messages: InvalidArgument or NotFound as the API describes,
  // ResourceExhausted past a limit, DeadlineExceeded or Cancelled as
  // `control` says (the store's QueryControl).
  absl::Status List(const pdk::archive::v1::ListEventsRequest& request,
                    pdk::archive::v1::ListEventsResponse* response,
                    const store::QueryControl& control = {});
  absl::Status Get(const pdk::archive::v1::GetEventRequest& request,
                   pdk::archive::v1::Event* response,
                   const store::QueryControl& control = {});
  absl::Status Count(const pdk::archive::v1::CountEventsRequest& request,
                     pdk::archive::v1::CountEventsResponse* response,
                     const store::QueryControl& control = {});

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
  // Waits for the helper threads (watch reads, query pools) to finish their
  // work and joins them. Call after the server has shut down. Idempotent.
  void Stop();

  const EventArchiveOptions& options() const { return options_; }
  // The deadline and cancellation of a call that started now: the client's
  // deadline capped at query_timeout.
  store::QueryControl ControlFor(const grpc::CallbackServerContext& context,
                                 const std::atomic<bool>* cancelled) const;
  // `status`, with a DeadlineExceeded one saying which deadline applies.
  absl::Status Explain(absl::Status status) const;

  // For the streaming calls: their dependencies and shutdown registration.
  // Register returns false once shutdown has begun.
  store::ArchiveReader& reader() { return reader_; }
  store::CommitFeed& feed() { return feed_; }
  WatchHub& hub() { return *hub_; }
  QueryPool& heavy_pool() { return *heavy_; }
  bool Register(StreamCall* call);
  void Unregister(StreamCall* call);

 private:
  // OK, or the status to end the call on `context` with at once (see
  // EventArchiveOptions::admissions).
  grpc::Status Admit(const grpc::CallbackServerContext& context) const;

  store::ArchiveReader& reader_;
  store::CommitFeed& feed_;
  const PageTokenCodec tokens_;
  const EventArchiveOptions options_;
  std::unique_ptr<WatchHub> hub_;
  std::unique_ptr<QueryPool> heavy_;  // counts and export reads
  std::unique_ptr<QueryPool> lists_;  // ListEvents

  std::mutex streams_mu_;
  std::set<StreamCall*> streams_;
  bool shutting_down_ = false;
};

}  // namespace pdkarchive::query

#endif  // PDKARCHIVE_QUERY_EVENT_ARCHIVE_SERVICE_H_
