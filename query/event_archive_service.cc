#include "query/event_archive_service.h"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "query/convert.h"
#include "query/csv_writer.h"

namespace pdkarchive::query {

namespace pb = ::pdk::archive::v1;

namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
// Export: the most rows one keyset read visits (a read usually ends
// earlier, when its chunk is full), and the chunk size aimed for (a chunk
// ends after the row that crosses it, far below gRPC's 4 MiB message limit)
// with room reserved for that last row.
constexpr int kExportBatch = 10000;
constexpr size_t kExportChunkBytes = 64 * 1024;
constexpr size_t kExportChunkSlack = 4 * 1024;
// Watch: rows per read; at most this many wait in memory per watcher.
constexpr int kWatchBatch = 500;

// Ends a streaming call at once, for arguments that fail validation.
template <typename Response>
class ErrorReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit ErrorReactor(const absl::Status& status) {
    this->Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

const grpc::Status& ShutdownStatus() {
  static const grpc::Status* status = new grpc::Status(
      grpc::StatusCode::UNAVAILABLE, "server is shutting down");
  return *status;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

// Runs watchers' reads off the writer's thread (which publishes commits) and
// off gRPC's threads. Work items are watchers needing a read.
class WatchHub {
 public:
  using Task = std::function<void()>;

  WatchHub() : thread_([this] { Run(); }) {}
  ~WatchHub() { Stop(); }

  // Queues `task`; it runs on the hub thread, even after Stop was requested.
  void Post(Task task) {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
    cv_.notify_one();
  }

  // Runs what is queued, then joins the thread. Idempotent.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      cv_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    pthread_setname_np(pthread_self(), "pdk-watch");
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping, nothing left
      Task task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

namespace {

// WatchEvents. State machine, all under mu_:
//  - at most one write in flight (writing_), from pending_;
//  - when pending_ is empty and rows may exist beyond scanned_through_ (known_
//    says so), one read is queued on the hub (reading_);
//  - the call finishes once (finishing_); Finish waits for an in-flight
//    write; the object is deleted by OnDone, or by the hub when a read was
//    still queued then.
class WatchReactor final : public grpc::ServerWriteReactor<pb::Event>,
                           public StreamCall {
 public:
  WatchReactor(EventArchiveService& service, store::EventFilter filter,
               int64_t after_sequence)
      : service_(service),
        filter_(std::move(filter)),
        scanned_through_(after_sequence),
        known_(after_sequence) {}

  void Start() {
    if (!service_.Register(this)) {
      std::lock_guard lock(mu_);
      FinishLocked(ShutdownStatus());
      return;
    }
    registered_ = true;
    // Subscribe before the first read so no commit falls between them.
    subscription_ = service_.feed().Subscribe([this](int64_t last_sequence) {
      std::lock_guard lock(mu_);
      known_ = std::max(known_, last_sequence);
      PumpLocked();
    });
    std::lock_guard lock(mu_);
    if (finishing_) return;
    reading_ = true;
    service_.hub().Post([this] { ReadMore(); });
  }

  void EndForShutdown() override {
    std::lock_guard lock(mu_);
    FinishLocked(ShutdownStatus());
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok)
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "stream closed"));
    if (finishing_) {
      FinishNowLocked();
      return;
    }
    PumpLocked();
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    // Unsubscribe first: afterwards the listener never runs again.
    if (subscription_ != 0) service_.feed().Unsubscribe(subscription_);
    if (registered_) service_.Unregister(this);
    bool remove;
    {
      std::lock_guard lock(mu_);
      done_ = true;
      remove = !reading_;
    }
    if (remove) delete this;
  }

 private:
  // On the hub thread.
  void ReadMore() {
    int64_t after = 0;
    bool skip = false;
    bool remove = false;
    {
      std::lock_guard lock(mu_);
      if (finishing_) {
        reading_ = false;
        skip = true;
        remove = done_;
      } else {
        after = scanned_through_;
      }
    }
    if (skip) {
      if (remove) delete this;
      return;
    }
    absl::StatusOr<store::SequencePage> page =
        service_.reader().ListAfterSequence(filter_, after, kWatchBatch);
    {
      std::lock_guard lock(mu_);
      reading_ = false;
      if (!page.ok()) {
        FinishLocked(ToGrpcStatus(page.status()));
      } else if (!finishing_) {
        scanned_through_ = page->scanned_through;
        // Reads cover a bounded window of sequences: keep reading while the
        // archive holds newer ones.
        known_ = std::max({known_, scanned_through_, page->newest});
        // A full page means the backlog goes on (the feed may not know of it
        // when the rows predate this process).
        if (page->rows.size() == static_cast<size_t>(kWatchBatch)) {
          known_ = std::max(known_, scanned_through_ + 1);
        }
        for (const store::EventRow& row : page->rows) {
          EventToProto(row, &pending_.emplace_back());
        }
        PumpLocked();
      }
      remove = done_ && !reading_;
    }
    if (remove) delete this;
  }

  void PumpLocked() {
    if (finishing_ || writing_) return;
    if (!pending_.empty()) {
      current_ = std::move(pending_.front());
      pending_.pop_front();
      writing_ = true;
      StartWrite(&current_);
      return;
    }
    if (!reading_ && known_ > scanned_through_) {
      reading_ = true;
      service_.hub().Post([this] { ReadMore(); });
    }
  }

  void FinishLocked(const grpc::Status& status) {
    if (finishing_) return;
    finishing_ = true;
    final_status_ = status;
    if (!writing_) FinishNowLocked();
  }

  void FinishNowLocked() {
    if (finished_) return;
    finished_ = true;
    pending_.clear();
    Finish(final_status_);
  }

  EventArchiveService& service_;
  const store::EventFilter filter_;
  bool registered_ = false;
  int subscription_ = 0;

  std::mutex mu_;
  int64_t scanned_through_;  // every matching row up to here is read
  int64_t known_;            // newest sequence known to be committed
  std::deque<pb::Event> pending_;
  pb::Event current_;  // the message being written
  bool writing_ = false;
  bool reading_ = false;
  bool finishing_ = false;
  bool finished_ = false;
  bool done_ = false;
  grpc::Status final_status_;
};

// ExportEvents. Chunks are produced on the thread that starts the call or
// completes the previous write, one at a time, reading the archive in keyset
// batches so memory stays flat however many rows match.
class ExportReactor final
    : public grpc::ServerWriteReactor<pb::ExportEventsResponse>,
      public StreamCall {
 public:
  ExportReactor(EventArchiveService& service, store::EventFilter filter,
                bool include_raw)
      : service_(service),
        filter_(std::move(filter)),
        include_raw_(include_raw),
        csv_(include_raw) {}

  void Start() {
    if (!service_.Register(this)) {
      std::lock_guard lock(mu_);
      FinishLocked(ShutdownStatus());
      return;
    }
    registered_ = true;
    {
      std::lock_guard lock(mu_);
      if (finishing_) return;
      producing_ = true;
    }
    Produce();
  }

  void EndForShutdown() override {
    std::lock_guard lock(mu_);
    FinishLocked(ShutdownStatus());
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok)
        FinishLocked(
            grpc::Status(grpc::StatusCode::CANCELLED, "stream closed"));
      if (finishing_) {
        FinishNowLocked();
        return;
      }
      producing_ = true;  // from here until Produce ends, Finish waits
    }
    Produce();
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    if (registered_) service_.Unregister(this);
    delete this;
  }

 private:
  // Builds and writes the next chunk. The caller has set producing_.
  void Produce() {
    std::string chunk;
    absl::Status status = FillChunk(chunk);
    std::lock_guard lock(mu_);
    producing_ = false;
    if (!status.ok()) FinishLocked(ToGrpcStatus(status));
    if (!finishing_ && chunk.empty()) FinishLocked(grpc::Status::OK);
    if (finishing_) {
      FinishNowLocked();
      return;
    }
    response_.set_csv_chunk(std::move(chunk));
    writing_ = true;
    StartWrite(&response_);
  }

  // Appends rows to `chunk` until it reaches the target size or the rows
  // run out. Touches only the scan state, which one thread at a time uses.
  // Rows go from the statement straight into the chunk; nothing is held
  // between chunks but the cursor.
  absl::Status FillChunk(std::string& chunk) {
    chunk.reserve(kExportChunkBytes + kExportChunkSlack);
    if (!header_written_) {
      csv_.AppendHeader(chunk);
      header_written_ = true;
    }
    while (chunk.size() < kExportChunkBytes && !exhausted_) {
      absl::StatusOr<store::ScanProgress> progress = service_.reader().ScanEach(
          filter_, cursor_, kExportBatch, include_raw_, [&](const store::EventView& row) {
            csv_.AppendRow(row, chunk);
            return chunk.size() < kExportChunkBytes;
          });
      if (!progress.ok()) return progress.status();
      if (progress->last) cursor_ = progress->last;
      exhausted_ = progress->exhausted;
    }
    return absl::OkStatus();
  }

  void FinishLocked(const grpc::Status& status) {
    if (finishing_) return;
    finishing_ = true;
    final_status_ = status;
    if (!writing_ && !producing_) FinishNowLocked();
  }

  void FinishNowLocked() {
    if (finished_) return;
    finished_ = true;
    Finish(final_status_);
  }

  EventArchiveService& service_;
  const store::EventFilter filter_;
  const bool include_raw_;
  const CsvWriter csv_;
  bool registered_ = false;

  // Scan state, used by one producing thread at a time.
  bool header_written_ = false;
  std::optional<store::Cursor> cursor_;
  bool exhausted_ = false;

  std::mutex mu_;
  pb::ExportEventsResponse response_;  // the message being written
  bool producing_ = false;
  bool writing_ = false;
  bool finishing_ = false;
  bool finished_ = false;
  grpc::Status final_status_;
};

}  // namespace

EventArchiveService::EventArchiveService(store::EventReader& reader,
                                         store::CommitFeed& feed,
                                         std::string page_token_key)
    : reader_(reader),
      feed_(feed),
      tokens_(std::move(page_token_key)),
      hub_(std::make_unique<WatchHub>()) {}

EventArchiveService::~EventArchiveService() { Stop(); }

absl::Status EventArchiveService::List(const pb::ListEventsRequest& request,
                                       pb::ListEventsResponse* response) {
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError("page_size must not be negative");
  }
  absl::StatusOr<store::EventFilter> filter = FilterFromProto(request.filter());
  if (!filter.ok()) return filter.status();

  store::ListQuery query;
  query.limit = request.page_size() == 0
                    ? kDefaultPageSize
                    : std::min(request.page_size(), kMaxPageSize);
  query.descending = request.descending();
  if (!request.page_token().empty()) {
    absl::StatusOr<store::Cursor> cursor =
        tokens_.Decode(request.page_token(), *filter, request.descending());
    if (!cursor.ok()) return cursor.status();
    query.after = *cursor;
  }
  query.filter = *std::move(filter);

  absl::StatusOr<store::ListPage> page = reader_.List(query);
  if (!page.ok()) return page.status();
  for (const store::EventRow& row : page->rows) {
    EventToProto(row, response->add_events());
  }
  if (page->more && !page->rows.empty()) {
    const store::EventRow& last = page->rows.back();
    response->set_next_page_token(
        tokens_.Encode(query.filter, query.descending,
                       store::Cursor{last.occur_time_ms, last.sequence}));
  }
  return absl::OkStatus();
}

absl::Status EventArchiveService::Get(const pb::GetEventRequest& request,
                                      pb::Event* response) {
  if (request.sequence() <= 0) {
    return absl::InvalidArgumentError("sequence must be positive");
  }
  absl::StatusOr<store::EventRow> row = reader_.Get(request.sequence());
  if (!row.ok()) return row.status();
  EventToProto(*row, response);
  return absl::OkStatus();
}

absl::Status EventArchiveService::Count(const pb::CountEventsRequest& request,
                                        pb::CountEventsResponse* response) {
  absl::StatusOr<store::EventFilter> filter = FilterFromProto(request.filter());
  if (!filter.ok()) return filter.status();
  absl::StatusOr<std::vector<store::Dimension>> dimensions =
      DimensionsFromProto(request.group_by());
  if (!dimensions.ok()) return dimensions.status();
  absl::StatusOr<std::vector<store::CountGroup>> groups =
      reader_.Count(*filter, *dimensions);
  if (!groups.ok()) return groups.status();
  int64_t total = 0;
  for (store::CountGroup& group : *groups) {
    total += group.count;
    GroupToProto(std::move(group), response->add_groups());
  }
  response->set_total(total);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* EventArchiveService::ListEvents(
    grpc::CallbackServerContext* context, const pb::ListEventsRequest* request,
    pb::ListEventsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(List(*request, response)));
  return reactor;
}

grpc::ServerUnaryReactor* EventArchiveService::GetEvent(
    grpc::CallbackServerContext* context, const pb::GetEventRequest* request,
    pb::Event* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(Get(*request, response)));
  return reactor;
}

grpc::ServerUnaryReactor* EventArchiveService::CountEvents(
    grpc::CallbackServerContext* context, const pb::CountEventsRequest* request,
    pb::CountEventsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(Count(*request, response)));
  return reactor;
}

grpc::ServerWriteReactor<pb::ExportEventsResponse>*
EventArchiveService::ExportEvents(grpc::CallbackServerContext* /*context*/,
                                  const pb::ExportEventsRequest* request) {
  absl::StatusOr<store::EventFilter> filter =
      FilterFromProto(request->filter());
  if (!filter.ok()) {
    return new ErrorReactor<pb::ExportEventsResponse>(filter.status());
  }
  auto* reactor =
      new ExportReactor(*this, *std::move(filter), request->include_raw());
  reactor->Start();
  return reactor;
}

grpc::ServerWriteReactor<pb::Event>* EventArchiveService::WatchEvents(
    grpc::CallbackServerContext* /*context*/,
    const pb::WatchEventsRequest* request) {
  absl::Status invalid;
  absl::StatusOr<store::EventFilter> filter =
      FilterFromProto(request->filter());
  if (!filter.ok()) {
    invalid = filter.status();
  } else if (request->after_sequence() < 0) {
    invalid = absl::InvalidArgumentError("after_sequence must not be negative");
  }
  if (!invalid.ok()) {
    return new ErrorReactor<pb::Event>(invalid);
  }
  auto* reactor =
      new WatchReactor(*this, *std::move(filter), request->after_sequence());
  reactor->Start();
  return reactor;
}

bool EventArchiveService::Register(StreamCall* call) {
  std::lock_guard lock(streams_mu_);
  if (shutting_down_) return false;
  streams_.insert(call);
  return true;
}

void EventArchiveService::Unregister(StreamCall* call) {
  std::lock_guard lock(streams_mu_);
  streams_.erase(call);
}

void EventArchiveService::BeginShutdown() {
  std::lock_guard lock(streams_mu_);
  shutting_down_ = true;
  for (StreamCall* call : streams_) call->EndForShutdown();
}

void EventArchiveService::Stop() {
  BeginShutdown();
  hub_->Stop();
}

}  // namespace pdkarchive::query
