// GroupCommitWriter: the single thread that writes the archive. Callers from
// any thread submit rows with a completion callback; the writer drains
// everything queued into one transaction, commits it (one fsync for the whole
// batch), and only then runs each row's callback. So an HTTP 200 sent from a
// callback is never earlier than the commit that made its event durable.
#ifndef PDKARCHIVE_STORE_GROUP_COMMIT_WRITER_H_
#define PDKARCHIVE_STORE_GROUP_COMMIT_WRITER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "store/batch_sink.h"
#include "store/event.h"

namespace pdkarchive::store {

class CommitFeed;

// Upper bounds of the histogram buckets in WriterStats (the last bucket of
// each histogram counts everything above its last bound).
inline constexpr size_t kBatchSizeBounds[] = {1, 4, 16, 64, 256, 1024};
inline constexpr uint64_t kCommitMsBounds[] = {1, 2, 5, 10, 25, 50, 100, 250};

// Counters for /metrics; read with GroupCommitWriter::stats().
struct WriterStats {
  uint64_t batches = 0;          // committed transactions
  uint64_t rows = 0;             // rows in committed transactions
  uint64_t failed_batches = 0;   // transactions that could not commit
  uint64_t commit_micros = 0;    // total time inside AppendBatch
  size_t max_batch = 0;
  std::vector<EngineStat> engine;  // BatchSink::Stats after the last Maintain
  // Per-bucket (not cumulative) counts of batch sizes and commit times.
  uint64_t batch_size_buckets[std::size(kBatchSizeBounds) + 1] = {};
  uint64_t commit_ms_buckets[std::size(kCommitMsBounds) + 1] = {};
};

class GroupCommitWriter {
 public:
  using Done = std::function<void(absl::StatusOr<AppendResult>)>;

  // `sink` and `feed` must outlive the writer. A batch holds at most
  // `max_batch` rows.
  GroupCommitWriter(BatchSink& sink, CommitFeed& feed, size_t max_batch = 1024);
  // Stops after committing everything already submitted.
  ~GroupCommitWriter();
  GroupCommitWriter(const GroupCommitWriter&) = delete;
  GroupCommitWriter& operator=(const GroupCommitWriter&) = delete;

  // Queues `row`. `done` runs exactly once: with the result after the batch
  // holding the row committed, or with the error that kept it from
  // committing (Unavailable), or Unavailable after Stop (then on the
  // caller's thread). Results are handed to a second thread that runs the
  // `done`s, so the writer starts the next transaction while the answers of
  // the last one are being sent. Thread-safe.
  void Submit(EventRow row, Done done);

  // Refuses new rows, commits what was queued, runs every `done`, and joins
  // both threads. Idempotent; the destructor calls it.
  void Stop();

  WriterStats stats() const;

  // OK when the last batch that wrote (or failed to write) committed, or
  // none was tried; otherwise the error that kept it from committing. A
  // batch of duplicates only, which writes nothing, leaves it as it was.
  // Thread-safe.
  absl::Status Health() const;

 private:
  struct Pending {
    EventRow row;
    Done done;
  };
  struct Answer {
    Done done;
    absl::StatusOr<AppendResult> result;
  };
  void Run();
  void CommitBatch(std::vector<Pending>& batch);
  // After sink_.Maintain: records the sink's figures in stats_.
  void RecordSinkState();
  void HandOver(std::vector<Answer> answers);
  void RunAnswers();

  BatchSink& sink_;
  CommitFeed& feed_;
  const size_t max_batch_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  WriterStats stats_;
  absl::Status health_;

  std::mutex answers_mu_;
  std::condition_variable answers_cv_;
  std::vector<Answer> answers_;
  bool answers_stopping_ = false;

  // Started last: the threads use everything above.
  std::thread answer_thread_;
  std::thread thread_;
};

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_GROUP_COMMIT_WRITER_H_
