// GroupCommitWriter: batching, ordering of acknowledgements after commits,
// failure propagation and draining on Stop.
#include "store/group_commit_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "store/commit_feed.h"
#include "store/batch_sink.h"

namespace pdkarchive::store {
namespace {

// Records batches; commits can be held and failures injected.
class RecordingSink final : public BatchSink {
 public:
  absl::StatusOr<std::vector<AppendResult>> AppendBatch(
      std::span<const EventRow> rows) override {
    std::unique_lock lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !held_; });
    batch_sizes_.push_back(rows.size());
    if (!fail_.ok()) return fail_;
    std::vector<AppendResult> out;
    for (size_t i = 0; i < rows.size(); ++i) {
      out.push_back(duplicates_ ? AppendResult{1, true} : AppendResult{++next_, false});
    }
    committed_ += rows.size();
    return out;
  }
  void Maintain(Load load) override {
    std::lock_guard lock(mu_);
    loads_.push_back(load);
    if (load == Load::kIdle && merge_when_idle_) merged_ = committed_;
    cv_.notify_all();
  }
  // Every committed row counts as unmerged until an idle Maintain, once
  // MergeWhenIdle(true), merges them.
  bool HasIdleWork() const override {
    std::lock_guard lock(mu_);
    return committed_ != merged_;
  }
  std::vector<EngineStat> Stats() const override {
    std::lock_guard lock(mu_);
    return {{"unmerged_events", "Rows not merged.", EngineStat::Kind::kGauge,
             static_cast<int64_t>(committed_ - merged_)},
            {"wal_frames", "Frames.", EngineStat::Kind::kGauge, wal_frames_},
            {"wal_restarts_total", "Restarts.", EngineStat::Kind::kCounter, wal_restarts_}};
  }
  void SetWal(int64_t frames, int64_t restarts) {
    std::lock_guard lock(mu_);
    wal_frames_ = frames;
    wal_restarts_ = restarts;
  }
  void MergeWhenIdle(bool on) {
    std::lock_guard lock(mu_);
    merge_when_idle_ = on;
  }
  // Waits up to `timeout` for Maintain to hear `load`; the loads heard.
  std::vector<Load> WaitForLoad(Load load, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout,
                 [&] { return std::find(loads_.begin(), loads_.end(), load) != loads_.end(); });
    return loads_;
  }
  // From now on every row is reported as already stored.
  void AnswerDuplicates(bool on) {
    std::lock_guard lock(mu_);
    duplicates_ = on;
  }
  void Hold(bool held) {
    std::lock_guard lock(mu_);
    held_ = held;
    cv_.notify_all();
  }
  void Fail(absl::Status s) {
    std::lock_guard lock(mu_);
    fail_ = s;
  }
  // Blocks until AppendBatch has been entered `n` times.
  void WaitEntered(int n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }
  size_t committed() {
    std::lock_guard lock(mu_);
    return committed_;
  }
  std::vector<size_t> batch_sizes() {
    std::lock_guard lock(mu_);
    return batch_sizes_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  bool merge_when_idle_ = false;
  int64_t wal_frames_ = 0;
  int64_t wal_restarts_ = 0;
  size_t merged_ = 0;
  absl::Status fail_;
  int64_t next_ = 0;
  size_t committed_ = 0;
  int entered_ = 0;
  bool duplicates_ = false;
  std::vector<size_t> batch_sizes_;
  std::vector<Load> loads_;
};

EventRow Row(int i) {
  EventRow r;
  r.topic = "t";
  r.dedupe_key = absl::StrCat(i);
  return r;
}

TEST(GroupCommitWriterTest, RowsQueuedDuringACommitShareTheNextOne) {
  RecordingSink sink;
  LocalCommitFeed feed;
  GroupCommitWriter writer(sink, feed);
  sink.Hold(true);
  std::promise<void> first_done;
  writer.Submit(Row(0), [&](absl::StatusOr<AppendResult>) { first_done.set_value(); });
  sink.WaitEntered(1);  // the writer is inside the first (held) commit
  std::atomic<int> acked{0};
  for (int i = 1; i <= 50; ++i) {
    writer.Submit(Row(i), [&](absl::StatusOr<AppendResult> r) {
      EXPECT_TRUE(r.ok());
      acked.fetch_add(1);
    });
  }
  EXPECT_EQ(acked.load(), 0) << "acknowledged before any commit";
  sink.Hold(false);
  first_done.get_future().wait();
  writer.Stop();
  EXPECT_EQ(acked.load(), 50);
  std::vector<size_t> sizes = sink.batch_sizes();
  ASSERT_GE(sizes.size(), 2u);
  EXPECT_EQ(sizes.back(), 50u) << "the 50 queued rows should form one batch";
}

// The store defers work (indexing the newest events) to quieter moments:
// Maintain must say how busy the writer is, and be called once idle.
TEST(GroupCommitWriterTest, MaintainHearsHowBusyTheWriterIs) {
  using Load = BatchSink::Load;
  RecordingSink sink;
  LocalCommitFeed feed;
  GroupCommitWriter writer(sink, feed);
  sink.Hold(true);
  writer.Submit(Row(0), [](absl::StatusOr<AppendResult>) {});
  sink.WaitEntered(1);
  std::atomic<int> acked{0};
  for (int i = 1; i <= 20; ++i) {
    writer.Submit(Row(i), [&](absl::StatusOr<AppendResult>) { acked.fetch_add(1); });
  }
  sink.Hold(false);
  std::vector<Load> loads = sink.WaitForLoad(Load::kIdle, std::chrono::seconds(10));
  // Rows were queued behind the first batch, none behind the second; then
  // nothing came.
  EXPECT_EQ(loads, (std::vector<Load>{Load::kBacklog, Load::kCaughtUp, Load::kIdle}));
  EXPECT_EQ(acked.load(), 20);
  // Idle is heard once, not on every wait; stopping adds nothing after it.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  writer.Stop();
  EXPECT_EQ(sink.WaitForLoad(Load::kIdle, std::chrono::milliseconds(0)).size(), 3u);
}

TEST(GroupCommitWriterTest, StoppingRightAfterACommitStillMaintainsAsIdle) {
  using Load = BatchSink::Load;
  RecordingSink sink;
  LocalCommitFeed feed;
  GroupCommitWriter writer(sink, feed);
  std::promise<void> done;
  writer.Submit(Row(0), [&](absl::StatusOr<AppendResult>) { done.set_value(); });
  done.get_future().wait();
  writer.Stop();
  std::vector<Load> loads = sink.WaitForLoad(Load::kIdle, std::chrono::milliseconds(0));
  ASSERT_FALSE(loads.empty());
  EXPECT_EQ(loads.back(), Load::kIdle);
}

// What the writer last heard from the sink as "unmerged_events", or -1.
int64_t ReportedUnmerged(const GroupCommitWriter& writer) {
  return FindEngineStat(writer.stats().engine, "unmerged_events").value_or(-1);
}

// Polls ReportedUnmerged for up to 5 s until it is `want`.
int64_t WaitForUnmerged(GroupCommitWriter& writer, int64_t want) {
  int64_t seen = ReportedUnmerged(writer);
  for (int i = 0; i < 500 && seen != want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    seen = ReportedUnmerged(writer);
  }
  return seen;
}

TEST(GroupCommitWriterTest, StatsSayWhatMaintainLeftUnmerged) {
  RecordingSink sink;
  LocalCommitFeed feed;
  GroupCommitWriter writer(sink, feed);
  std::vector<std::future<absl::StatusOr<AppendResult>>> answers;
  auto submit = [&](int i) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<AppendResult>>>();
    answers.push_back(promise->get_future());
    writer.Submit(Row(i), [promise](absl::StatusOr<AppendResult> r) { promise->set_value(r); });
  };
  for (int i = 0; i < 5; ++i) submit(i);
  for (auto& a : answers) ASSERT_TRUE(a.get().ok());
  EXPECT_EQ(WaitForUnmerged(writer, 5), 5);
  // The idle Maintain leaves them (this sink merges only when told), and
  // the figure stays.
  sink.WaitForLoad(BatchSink::Load::kIdle, std::chrono::seconds(5));
  EXPECT_EQ(ReportedUnmerged(writer), 5);

  sink.MergeWhenIdle(true);
  answers.clear();
  submit(5);
  ASSERT_TRUE(answers[0].get().ok());
  EXPECT_EQ(WaitForUnmerged(writer, 0), 0);
  writer.Stop();
}

TEST(GroupCommitWriterTest, StatsCarryWhatTheEngineReports) {
  RecordingSink sink;
  sink.SetWal(123, 4);
  LocalCommitFeed feed;
  GroupCommitWriter writer(sink, feed);
  auto promise = std::make_shared<std::promise<absl::StatusOr<AppendResult>>>();
  auto answer = promise->get_future();
  writer.Submit(Row(0), [promise](absl::StatusOr<AppendResult> r) { promise->set_value(r); });
  ASSERT_TRUE(answer.get().ok());
  // Recorded after the Maintain that follows the commit.
  sink.WaitForLoad(BatchSink::Load::kIdle, std::chrono::seconds(5));
  WriterStats stats = writer.stats();
  for (int i = 0; i < 500 && FindEngineStat(stats.engine, "wal_restarts_total") != 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    stats = writer.stats();
  }
  EXPECT_EQ(FindEngineStat(stats.engine, "wal_frames"), 123);
  EXPECT_EQ(FindEngineStat(stats.engine, "wal_restarts_total"), 4);
  EXPECT_EQ(FindEngineStat(stats.engine, "no_such_figure"), std::nullopt);
  writer.Stop();
}

TEST(GroupCommitWriterTest, BatchesRespectTheMaximum) {
  RecordingSink sink;
  LocalCommitFeed feed;
  sink.Hold(true);
  GroupCommitWriter writer(sink, feed, /*max_batch=*/8);
  std::atomic<int> acked{0};
  for (int i = 0; i < 40; ++i) {
    writer.Submit(Row(i), [&](absl::StatusOr<AppendResult>) { acked.fetch_add(1); });
  }
  sink.Hold(false);
  writer.Stop();
  EXPECT_EQ(acked.load(), 40);
  for (size_t s : sink.batch_sizes()) EXPECT_LE(s, 8u);
}

TEST(GroupCommitWriterTest, FailedCommitReportsUnavailableToEveryRow) {
  RecordingSink sink;
  sink.Fail(absl::UnavailableError("disk I/O error"));
  LocalCommitFeed feed;
  GroupCommitWriter writer(sink, feed);
  std::promise<absl::Status> result;
  writer.Submit(Row(1), [&](absl::StatusOr<AppendResult> r) { result.set_value(r.status()); });
  absl::Status s = result.get_future().get();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(writer.Health().ok());
  EXPECT_EQ(writer.stats().failed_batches, 1u);

  // The writer recovers by itself once commits succeed again.
  sink.Fail(absl::OkStatus());
  std::promise<absl::Status> second;
  writer.Submit(Row(2), [&](absl::StatusOr<AppendResult> r) { second.set_value(r.status()); });
  EXPECT_TRUE(second.get_future().get().ok());
  EXPECT_TRUE(writer.Health().ok());
}

TEST(GroupCommitWriterTest, DuplicatesOnlyDoNotClearAStoreFault) {
  RecordingSink sink;
  LocalCommitFeed feed;
  GroupCommitWriter writer(sink, feed);
  auto submit = [&](int i) {
    std::promise<absl::Status> done;
    writer.Submit(Row(i), [&](absl::StatusOr<AppendResult> r) { done.set_value(r.status()); });
    return done.get_future().get();
  };
  sink.Fail(absl::UnavailableError("database or disk is full"));
  EXPECT_FALSE(submit(1).ok());
  // A redelivery needs no write, so it succeeds while the disk is still full:
  // health must keep reporting the fault.
  sink.Fail(absl::OkStatus());
  sink.AnswerDuplicates(true);
  EXPECT_TRUE(submit(2).ok());
  EXPECT_EQ(writer.Health().code(), absl::StatusCode::kUnavailable);
  // A batch that stores a row proves the store writable again.
  sink.AnswerDuplicates(false);
  EXPECT_TRUE(submit(3).ok());
  EXPECT_TRUE(writer.Health().ok());
}

TEST(GroupCommitWriterTest, StopCommitsWhatWasQueuedAndRefusesMore) {
  RecordingSink sink;
  LocalCommitFeed feed;
  sink.Hold(true);
  GroupCommitWriter writer(sink, feed);
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) {
    writer.Submit(Row(i), [&](absl::StatusOr<AppendResult> r) {
      if (r.ok()) ok.fetch_add(1);
    });
  }
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    sink.Hold(false);
  });
  writer.Stop();
  release.join();
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(sink.committed(), 20u);
  absl::Status late;
  writer.Submit(Row(99), [&](absl::StatusOr<AppendResult> r) { late = r.status(); });
  EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable);
}

TEST(GroupCommitWriterTest, SlowAnswersDoNotHoldBackTheNextCommit) {
  // Answers are sent from their own thread: while one is stuck (a slow
  // client socket), later rows still commit and are answered in order.
  RecordingSink sink;
  LocalCommitFeed feed;
  GroupCommitWriter writer(sink, feed);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> first_answered;
  writer.Submit(Row(0), [&](absl::StatusOr<AppendResult> r) {
    EXPECT_TRUE(r.ok());
    first_answered.set_value();
    released.wait();
  });
  first_answered.get_future().wait();
  std::vector<int64_t> later;
  std::mutex later_mu;
  std::promise<void> all_later;
  for (int i = 1; i <= 3; ++i) {
    writer.Submit(Row(i), [&, i](absl::StatusOr<AppendResult> r) {
      std::lock_guard lock(later_mu);
      later.push_back(r.ok() ? r->sequence : -i);
      if (later.size() == 3) all_later.set_value();
    });
    sink.WaitEntered(i + 1);  // one commit each: the writer is not stuck
  }
  // All three committed while the first answer is still blocked...
  EXPECT_EQ(sink.committed(), 4u);
  {
    std::lock_guard lock(later_mu);
    EXPECT_TRUE(later.empty());
  }
  release.set_value();
  // ...and are answered once it returns, in commit order.
  all_later.get_future().wait();
  EXPECT_EQ(later, (std::vector<int64_t>{2, 3, 4}));
}

TEST(GroupCommitWriterTest, CommitFeedHearsTheNewestSequenceAfterEachCommit) {
  RecordingSink sink;
  LocalCommitFeed feed;
  std::mutex mu;
  std::vector<int64_t> heard;
  int id = feed.Subscribe([&](int64_t seq) {
    std::lock_guard lock(mu);
    heard.push_back(seq);
  });
  GroupCommitWriter writer(sink, feed);
  for (int i = 0; i < 5; ++i) {
    std::promise<void> done;
    writer.Submit(Row(i), [&](absl::StatusOr<AppendResult>) { done.set_value(); });
    done.get_future().wait();
  }
  writer.Stop();
  feed.Unsubscribe(id);
  std::lock_guard lock(mu);
  ASSERT_EQ(heard.size(), 5u);
  for (size_t i = 1; i < heard.size(); ++i) EXPECT_GT(heard[i], heard[i - 1]);
  EXPECT_EQ(feed.last_sequence(), 5);
}

}  // namespace
}  // namespace pdkarchive::store
