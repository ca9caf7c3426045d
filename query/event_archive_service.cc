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

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "query/access_interceptor.h"
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
constexpr size_t kExportChunkBytes = 256 * 1024;
constexpr size_t kExportChunkSlack = 4 * 1024;
// Watch: the most rows, and about the most bytes, one read takes in.
constexpr int kWatchBatch = 500;
constexpr size_t kWatchReadBytes = 1 << 20;

// Ends a streaming call at once, for arguments that fail validation.
template <typename Response>
class ErrorReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit ErrorReactor(const absl::Status& status) {
    this->Finish(ToGrpcStatus(status));
  }
  explicit ErrorReactor(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

// Ends a unary call at once with `status`.
grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* context,
                                 const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

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

// Runs queries on a fixed set of threads, in the order they were posted.
// At most kMaxWaitingQueries wait in line unless posted with `always`.
class QueryPool {
 public:
  QueryPool(const char* name, int threads) {
    for (int i = 0; i < std::max(threads, 1); ++i) {
      threads_.emplace_back([this, name] {
        pthread_setname_np(pthread_self(), name);
        Run();
      });
    }
  }
  ~QueryPool() { Stop(); }

  // Queues `task`; false (and `task` dropped) when the line is full.
  bool Post(std::function<void()> task, bool always = false) {
    std::lock_guard lock(mu_);
    if (!always && tasks_.size() >= kMaxWaitingQueries) return false;
    tasks_.push_back(std::move(task));
    cv_.notify_one();
    return true;
  }

  // Runs what is queued, then joins the threads. Idempotent.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      cv_.notify_all();
    }
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping, nothing left
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

namespace {

// A unary call answered from a QueryPool thread; it notes when the client
// goes away, which interrupts the query.
class PooledCall final : public grpc::ServerUnaryReactor {
 public:
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override { delete this; }
  const std::atomic<bool>* cancelled() const { return &cancelled_; }

 private:
  std::atomic<bool> cancelled_{false};
};

// Runs `query` on `pool` for `call`, unless the call's deadline has passed or
// it was cancelled by the time its turn comes. RESOURCE_EXHAUSTED when the
// pool's line is full.
void RunPooled(EventArchiveService& service, QueryPool& pool, PooledCall* call,
               const store::QueryControl& control, const char* what,
               std::function<absl::Status()> query) {
  auto task = [&service, call, control, query = std::move(query)] {
    absl::Status status;
    if (control.cancelled->load()) {
      status = absl::CancelledError("the query was cancelled while it waited");
    } else if (std::chrono::steady_clock::now() >= control.deadline) {
      status = absl::DeadlineExceededError(
          "the query's deadline passed while it waited");
    } else {
      status = query();
    }
    call->Finish(ToGrpcStatus(service.Explain(status)));
  };
  if (!pool.Post(std::move(task))) {
    call->Finish(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("server busy: ", kMaxWaitingQueries, " ", what,
                     " already wait their turn; try again later")));
  }
}

// WatchEvents. State machine, all under mu_:
//  - at most one write in flight (writing_), from pending_;
//  - when rows may exist beyond scanned_through_ (known_ says so), one read
//    is queued on the hub (reading_): while catching up on the backlog only
//    once pending_ is empty (the client sets the pace), and once caught up
//    (live_) at every commit, so a client that stops reading makes pending_
//    grow, and past options().watch_buffer_bytes the call ends with
//    RESOURCE_EXHAUSTED;
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
    const EventArchiveOptions& options = service_.options();
    store::QueryControl control;
    control.deadline = std::chrono::steady_clock::now() + options.query_timeout;
    absl::StatusOr<store::SequencePage> page =
        service_.reader().ListAfterSequence(
            filter_, after, kWatchBatch,
            std::min(kWatchReadBytes, options.watch_buffer_bytes), control);
    {
      std::lock_guard lock(mu_);
      reading_ = false;
      if (!page.ok()) {
        FinishLocked(ToGrpcStatus(service_.Explain(page.status())));
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
          const size_t bytes = store::RowReplyBytes(row);
          pending_.push_back({pb::Event(), bytes});
          EventToProto(row, &pending_.back().event);
          pending_bytes_ += bytes;
        }
        if (live_ && pending_bytes_ > options.watch_buffer_bytes) {
          FinishLocked(grpc::Status(
              grpc::StatusCode::RESOURCE_EXHAUSTED,
              absl::StrCat(
                  "watcher fell behind: more than ", options.watch_buffer_bytes,
                  " bytes of events were waiting to be sent "
                  "(--watch-buffer-bytes); "
                  "watch again with after_sequence set to the last sequence "
                  "received (",
                  last_sent_, ")")));
        } else {
          if (scanned_through_ >= known_) live_ = true;
          PumpLocked();
        }
      }
      remove = done_ && !reading_;
    }
    if (remove) delete this;
  }

  void PumpLocked() {
    if (finishing_) return;
    if (writing_) {
      // A live watcher reads on while a write is in flight.
      if (live_ && !reading_ && known_ > scanned_through_) {
        reading_ = true;
        service_.hub().Post([this] { ReadMore(); });
      }
      return;
    }
    if (!pending_.empty()) {
      current_ = std::move(pending_.front().event);
      pending_bytes_ -= pending_.front().bytes;
      pending_.pop_front();
      last_sent_ = current_.sequence();
      writing_ = true;
      StartWrite(&current_);
      if (!live_) return;
    }
    if (!reading_ && known_ > scanned_through_ && (pending_.empty() || live_)) {
      reading_ = true;
      service_.hub().Post([this] { ReadMore(); });
    }
  }

  void FinishLocked(const grpc::Status& status) {
    if (finishing_) return;
    finishing_ = true;
    final_status_ = status;
    // Nothing more is sent: free the buffer now, even while a write to a
    // client that does not read holds up the end of the call.
    pending_.clear();
    pending_bytes_ = 0;
    if (!writing_) FinishNowLocked();
  }

  void FinishNowLocked() {
    if (finished_) return;
    finished_ = true;
    pending_.clear();
    pending_bytes_ = 0;
    Finish(final_status_);
  }

  struct Pending {
    pb::Event event;
    size_t bytes = 0;  // store::RowReplyBytes of its row
  };

  EventArchiveService& service_;
  const store::EventFilter filter_;
  bool registered_ = false;
  int subscription_ = 0;

  std::mutex mu_;
  int64_t scanned_through_;  // every matching row up to here is read
  int64_t known_;            // newest sequence known to be committed
  bool live_ = false;        // caught up once: reads follow commits
  std::deque<Pending> pending_;
  size_t pending_bytes_ = 0;
  int64_t last_sent_ = 0;  // the sequence of the newest event handed to gRPC
  pb::Event current_;  // the message being written
  bool writing_ = false;
  bool reading_ = false;
  bool finishing_ = false;
  bool finished_ = false;
  bool done_ = false;
  grpc::Status final_status_;
};

// ExportEvents. Chunks are produced on the service's heavy pool, one at a
// time (each after the previous write completes), reading the archive in
// keyset batches so memory stays flat however many rows match. Each chunk's
// reads run under the client's deadline capped at query_timeout.
class ExportReactor final
    : public grpc::ServerWriteReactor<pb::ExportEventsResponse>,
      public StreamCall {
 public:
  ExportReactor(EventArchiveService& service, store::EventFilter filter,
                bool include_raw,
                std::chrono::steady_clock::time_point client_deadline)
      : service_(service),
        filter_(std::move(filter)),
        include_raw_(include_raw),
        client_deadline_(client_deadline),
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
    if (!service_.heavy_pool().Post([this] { Produce(); })) {
      std::lock_guard lock(mu_);
      producing_ = false;
      FinishLocked(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat(
              "server busy: ", kMaxWaitingQueries,
              " counts and exports already wait their turn; try again later")));
    }
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
    // A stream under way always gets its turn.
    service_.heavy_pool().Post([this] { Produce(); }, /*always=*/true);
  }

  void OnCancel() override {
    cancelled_.store(true);
    std::lock_guard lock(mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    if (registered_) service_.Unregister(this);
    // Produce runs on a pool thread, outside gRPC's reactions: it may still
    // hold mu_ right after its Finish. Wait it out before deleting.
    { std::lock_guard lock(mu_); }
    delete this;
  }

 private:
  // Builds and writes the next chunk. The caller has set producing_.
  void Produce() {
    std::string chunk;
    absl::Status status = FillChunk(chunk);
    std::lock_guard lock(mu_);
    producing_ = false;
    if (!status.ok()) FinishLocked(ToGrpcStatus(service_.Explain(status)));
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
    store::QueryControl control;
    control.deadline =
        std::min(client_deadline_, std::chrono::steady_clock::now() +
                                       service_.options().query_timeout);
    control.cancelled = &cancelled_;
    while (chunk.size() < kExportChunkBytes && !exhausted_) {
      absl::StatusOr<store::ScanProgress> progress = service_.reader().ScanEach(
          filter_, cursor_, kExportBatch, include_raw_,
          [&](const store::EventView& row) {
            csv_.AppendRow(row, chunk);
            return chunk.size() < kExportChunkBytes;
          },
          control);
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
  const std::chrono::steady_clock::time_point client_deadline_;
  const CsvWriter csv_;
  bool registered_ = false;
  std::atomic<bool> cancelled_{false};

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

namespace {

// The client's deadline of `context` on the steady clock (max when none).
std::chrono::steady_clock::time_point ClientDeadline(
    const grpc::CallbackServerContext& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return std::chrono::steady_clock::time_point::max();
  }
  const auto left = deadline - std::chrono::system_clock::now();
  // Farther than any query may run: as good as none.
  if (left > std::chrono::hours(24 * 365))
    return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
}

}  // namespace

EventArchiveService::EventArchiveService(store::ArchiveReader& reader,
                                         store::CommitFeed& feed,
                                         std::string page_token_key,
                                         const EventArchiveOptions& options)
    : reader_(reader),
      feed_(feed),
      tokens_(std::move(page_token_key)),
      options_(options),
      hub_(std::make_unique<WatchHub>()),
      heavy_(std::make_unique<QueryPool>("pdk-query-heavy",
                                         options.max_heavy_queries)),
      lists_(std::make_unique<QueryPool>("pdk-query-list",
                                         options.list_threads)) {}

EventArchiveService::~EventArchiveService() { Stop(); }

store::QueryControl EventArchiveService::ControlFor(
    const grpc::CallbackServerContext& context,
    const std::atomic<bool>* cancelled) const {
  store::QueryControl control;
  control.deadline =
      std::min(ClientDeadline(context),
               std::chrono::steady_clock::now() + options_.query_timeout);
  control.cancelled = cancelled;
  return control;
}

absl::Status EventArchiveService::Explain(absl::Status status) const {
  if (status.code() != absl::StatusCode::kDeadlineExceeded) return status;
  return absl::DeadlineExceededError(absl::StrCat(
      status.message(), " (the client's deadline, at most --query-timeout=",
      absl::FormatDuration(absl::FromChrono(options_.query_timeout)),
      "); narrow the filter or the time range"));
}

absl::Status EventArchiveService::List(const pb::ListEventsRequest& request,
                                       pb::ListEventsResponse* response,
                                       const store::QueryControl& control) {
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
  query.max_bytes = options_.max_page_bytes;
  if (!request.page_token().empty()) {
    absl::StatusOr<store::Cursor> cursor =
        tokens_.Decode(request.page_token(), *filter, request.descending());
    if (!cursor.ok()) return cursor.status();
    query.after = *cursor;
  }
  query.filter = *std::move(filter);

  absl::StatusOr<store::ListPage> page = reader_.List(query, control);
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
                                      pb::Event* response,
                                      const store::QueryControl& control) {
  if (request.sequence() <= 0) {
    return absl::InvalidArgumentError("sequence must be positive");
  }
  absl::StatusOr<store::EventRow> row =
      reader_.Get(request.sequence(), control);
  if (!row.ok()) return row.status();
  EventToProto(*row, response);
  return absl::OkStatus();
}

absl::Status EventArchiveService::Count(const pb::CountEventsRequest& request,
                                        pb::CountEventsResponse* response,
                                        const store::QueryControl& control) {
  absl::StatusOr<store::EventFilter> filter = FilterFromProto(request.filter());
  if (!filter.ok()) return filter.status();
  absl::StatusOr<std::vector<store::Dimension>> dimensions =
      DimensionsFromProto(request.group_by());
  if (!dimensions.ok()) return dimensions.status();
  absl::StatusOr<std::vector<store::CountGroup>> groups =
      reader_.Count(*filter, *dimensions, options_.max_count_groups, control);
  if (groups.status().code() == absl::StatusCode::kResourceExhausted) {
    return absl::ResourceExhaustedError(
        absl::StrCat(groups.status().message(),
                     " (--max-count-groups=", options_.max_count_groups, ")"));
  }
  if (!groups.ok()) return groups.status();
  int64_t total = 0;
  for (store::CountGroup& group : *groups) {
    total += group.count;
    GroupToProto(std::move(group), response->add_groups());
  }
  response->set_total(total);
  return absl::OkStatus();
}

grpc::Status EventArchiveService::Admit(const grpc::CallbackServerContext& context) const {
  if (options_.admissions == nullptr) return grpc::Status::OK;
  return options_.admissions->Check(&context);
}

grpc::ServerUnaryReactor* EventArchiveService::ListEvents(
    grpc::CallbackServerContext* context, const pb::ListEventsRequest* request,
    pb::ListEventsResponse* response) {
  if (grpc::Status refused = Admit(*context); !refused.ok()) return Refuse(context, refused);
  auto* call = new PooledCall();
  const store::QueryControl control = ControlFor(*context, call->cancelled());
  RunPooled(*this, *lists_, call, control, "ListEvents calls",
            [this, request, response, control] {
              return List(*request, response, control);
            });
  return call;
}

grpc::ServerUnaryReactor* EventArchiveService::GetEvent(
    grpc::CallbackServerContext* context, const pb::GetEventRequest* request,
    pb::Event* response) {
  if (grpc::Status refused = Admit(*context); !refused.ok()) return Refuse(context, refused);
  // A lookup by primary key on a connection kept for lookups: answered on
  // gRPC's thread.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(
      Explain(Get(*request, response, ControlFor(*context, nullptr)))));
  return reactor;
}

grpc::ServerUnaryReactor* EventArchiveService::CountEvents(
    grpc::CallbackServerContext* context, const pb::CountEventsRequest* request,
    pb::CountEventsResponse* response) {
  if (grpc::Status refused = Admit(*context); !refused.ok()) return Refuse(context, refused);
  auto* call = new PooledCall();
  const store::QueryControl control = ControlFor(*context, call->cancelled());
  RunPooled(*this, *heavy_, call, control, "counts and exports",
            [this, request, response, control] {
              return Count(*request, response, control);
            });
  return call;
}

grpc::ServerWriteReactor<pb::ExportEventsResponse>*
EventArchiveService::ExportEvents(grpc::CallbackServerContext* context,
                                  const pb::ExportEventsRequest* request) {
  if (grpc::Status refused = Admit(*context); !refused.ok()) {
    return new ErrorReactor<pb::ExportEventsResponse>(refused);
  }
  absl::StatusOr<store::EventFilter> filter =
      FilterFromProto(request->filter());
  if (!filter.ok()) {
    return new ErrorReactor<pb::ExportEventsResponse>(filter.status());
  }
  auto* reactor =
      new ExportReactor(*this, *std::move(filter), request->include_raw(),
                        ClientDeadline(*context));
  reactor->Start();
  return reactor;
}

grpc::ServerWriteReactor<pb::Event>* EventArchiveService::WatchEvents(
    grpc::CallbackServerContext* context,
    const pb::WatchEventsRequest* request) {
  if (grpc::Status refused = Admit(*context); !refused.ok()) {
    return new ErrorReactor<pb::Event>(refused);
  }
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
  heavy_->Stop();
  lists_->Stop();
}

}  // namespace pdkarchive::query
