#include "store/group_commit_writer.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <utility>

#include "store/commit_feed.h"

namespace pdkarchive::store {
namespace {

// How long the writer waits for rows before calling Maintain(kIdle).
constexpr std::chrono::milliseconds kIdleAfter{50};

}  // namespace

GroupCommitWriter::GroupCommitWriter(BatchSink& sink, CommitFeed& feed, size_t max_batch)
    : sink_(sink),
      feed_(feed),
      max_batch_(max_batch == 0 ? 1 : max_batch),
      answer_thread_([this] { RunAnswers(); }),
      thread_([this] { Run(); }) {}

GroupCommitWriter::~GroupCommitWriter() { Stop(); }

void GroupCommitWriter::Submit(EventRow row, Done done) {
  sink_.Prepare(row);  // on the caller's thread: the writer is the bottleneck
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back({std::move(row), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(absl::UnavailableError("archive is shutting down"));
}

void GroupCommitWriter::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(answers_mu_);
    answers_stopping_ = true;
  }
  answers_cv_.notify_one();
  if (answer_thread_.joinable()) answer_thread_.join();
}

void GroupCommitWriter::HandOver(std::vector<Answer> answers) {
  {
    std::lock_guard lock(answers_mu_);
    if (answers_.empty()) {
      answers_ = std::move(answers);
    } else {
      std::move(answers.begin(), answers.end(), std::back_inserter(answers_));
    }
  }
  answers_cv_.notify_one();
}

void GroupCommitWriter::RunAnswers() {
  pthread_setname_np(pthread_self(), "pdk-answers");
  std::vector<Answer> answering;
  while (true) {
    {
      std::unique_lock lock(answers_mu_);
      answers_cv_.wait(lock, [this] { return answers_stopping_ || !answers_.empty(); });
      if (answers_.empty()) return;  // stopping, and everything is answered
      answering.swap(answers_);
    }
    for (Answer& a : answering) a.done(std::move(a.result));
    answering.clear();
  }
}

WriterStats GroupCommitWriter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

absl::Status GroupCommitWriter::Health() const {
  std::lock_guard lock(mu_);
  return health_;
}

void GroupCommitWriter::Run() {
  pthread_setname_np(pthread_self(), "pdk-writer");
  std::vector<Pending> batch;
  RecordSinkState();  // what an earlier run left
  // Whether Maintain(kIdle) ran since the last batch. Work an earlier run
  // left counts as a batch: with no traffic it is done at once.
  bool idle_done = !sink_.HasIdleWork();
  while (true) {
    BatchSink::Load load = BatchSink::Load::kBacklog;
    {
      std::unique_lock lock(mu_);
      if (!idle_done) {
        // Housekeeping deferred under load (indexing the newest events) is
        // done once nothing has arrived for a moment.
        if (!cv_.wait_for(lock, kIdleAfter, [this] { return stopping_ || !queue_.empty(); })) {
          lock.unlock();
          sink_.Maintain(BatchSink::Load::kIdle);
          RecordSinkState();
          idle_done = true;
          continue;
        }
      }
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and everything is committed
      // Whatever arrived while the previous batch was committing forms this
      // batch: the busier the server, the bigger the batch, with no timer.
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    CommitBatch(batch);
    batch.clear();
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) load = BatchSink::Load::kCaughtUp;
    }
    sink_.Maintain(load);
    RecordSinkState();
    idle_done = false;
  }
  if (!idle_done) {
    sink_.Maintain(BatchSink::Load::kIdle);
    RecordSinkState();
  }
}

void GroupCommitWriter::RecordSinkState() {
  std::vector<EngineStat> engine = sink_.Stats();
  std::lock_guard lock(mu_);
  stats_.engine = std::move(engine);
}

void GroupCommitWriter::CommitBatch(std::vector<Pending>& batch) {
  std::vector<EventRow> rows;
  rows.reserve(batch.size());
  for (Pending& p : batch) rows.push_back(std::move(p.row));

  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<AppendResult>> results = sink_.AppendBatch(rows);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  {
    std::lock_guard lock(mu_);
    // A batch of redeliveries only writes nothing, so its success says
    // nothing about the disk: only a batch that stored a row clears a fault.
    if (!results.ok()) {
      health_ = results.status();
    } else if (std::any_of(results->begin(), results->end(),
                           [](const AppendResult& r) { return !r.duplicate; })) {
      health_ = absl::OkStatus();
    }
    if (results.ok()) {
      ++stats_.batches;
      stats_.rows += rows.size();
      stats_.commit_micros += static_cast<uint64_t>(micros);
      if (rows.size() > stats_.max_batch) stats_.max_batch = rows.size();
      size_t b = 0;
      while (b < std::size(kBatchSizeBounds) && rows.size() > kBatchSizeBounds[b]) ++b;
      ++stats_.batch_size_buckets[b];
      size_t c = 0;
      while (c < std::size(kCommitMsBounds) &&
             static_cast<uint64_t>(micros) > kCommitMsBounds[c] * 1000) {
        ++c;
      }
      ++stats_.commit_ms_buckets[c];
    } else {
      ++stats_.failed_batches;
    }
  }

  std::vector<Answer> answers;
  answers.reserve(batch.size());
  if (!results.ok()) {
    for (Pending& p : batch) answers.push_back({std::move(p.done), results.status()});
    HandOver(std::move(answers));
    return;
  }
  int64_t newest = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const AppendResult& r = (*results)[i];
    if (!r.duplicate && r.sequence > newest) newest = r.sequence;
    answers.push_back({std::move(batch[i].done), r});
  }
  if (newest > 0) feed_.Publish(newest);
  HandOver(std::move(answers));
}

}  // namespace pdkarchive::store
