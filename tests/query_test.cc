// The EventArchive gRPC service end to end: a real SQLite archive in a temp
// dir written through the group-commit writer, a real gRPC server on
// 127.0.0.1:0, and expectations computed independently in the test.
#include <SQLiteCpp/SQLiteCpp.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "query/grpc_server.h"
#include "store/commit_feed.h"
#include "store/group_commit_writer.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/test_support/heap.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_dir.h"
#include "timeutil/time_util.h"

namespace pdkarchive::query {
namespace {

namespace pb = ::pdk::archive::v1;
using store::EventRow;

// 2026-01-01T00:00:00Z.
constexpr int64_t kBaseMs = 1767225600000;
using timeutil::kDayMs;
using timeutil::kHourMs;
constexpr int kRowCount = 3000;

const std::vector<std::string>& Topics() {
  static const auto* topics =
      new std::vector<std::string>{"door.request.allowed",
                                   "door.request.denied",
                                   "door.forced",
                                   "door.held",
                                   "entity.person.created",
                                   "ou.updated",
                                   "panel.connected",
                                   "doorx.weird",
                                   "door",
                                   "door/odd"};
  return *topics;
}

std::string FamilyOf(const std::string& topic) {
  if (topic.rfind("ou.", 0) == 0) return "org";
  if (topic == "doorx.weird" || topic == "door/odd") return "unknown";
  return "panel";
}

// A 16-byte dedupe key unique per `n`.
std::string DedupeKey(int64_t n) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "k%015lld", static_cast<long long>(n));
  return std::string(buffer, 16);
}

std::vector<EventRow> MakeRows(int count, int64_t first_key, uint32_t seed,
                               int64_t base_ms = kBaseMs) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) {
    return static_cast<int>(rng() % static_cast<uint32_t>(n));
  };
  std::vector<EventRow> rows;
  for (int i = 0; i < count; ++i) {
    EventRow row;
    const int64_t n = first_key + i;
    row.topic =
        Topics()[static_cast<size_t>(pick(static_cast<int>(Topics().size())))];
    row.family = FamilyOf(row.topic);
    static const char* const kPanels[] = {"p1", "p2", "p3", ""};
    row.panel_id = kPanels[pick(4)];
    row.ou_id = pick(2) == 0 ? "ou1" : "ou2";
    if (pick(5) != 0) row.door_id = 1 + pick(12);
    if (pick(10) < 7) row.person_id = 100 + pick(41);
    row.door_name = row.door_id ? absl::StrCat("Door ", *row.door_id) : "";
    if (pick(50) == 0) row.door_name = "Lobby, \"main\"\r\nwest";
    row.actor_user_id = pick(20) == 0 ? "-5" : absl::StrCat("user", pick(7));
    row.event_id = absl::StrCat("e", n);
    // Every 10th row shares an earlier row's time: ties break by sequence.
    if (i % 10 == 9 && !rows.empty()) {
      row.occur_time_ms =
          rows[static_cast<size_t>(pick(static_cast<int>(rows.size())))]
              .occur_time_ms;
    } else {
      row.occur_time_ms = base_ms + static_cast<int64_t>(rng() % (5 * kDayMs));
    }
    row.receive_time_ms = row.occur_time_ms + 500;
    row.subscription = "default";
    row.dedupe_key = DedupeKey(n);
    row.raw = absl::StrCat("{\"topic\":\"", row.topic, "\",\"n\":", n, "}");
    rows.push_back(std::move(row));
  }
  return rows;
}

int64_t TimestampMs(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1000000;
}

void SetMs(google::protobuf::Timestamp* t, int64_t ms) {
  t->set_seconds(ms / 1000);
  t->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

// The filter semantics, written out independently of the server.
bool Matches(const EventRow& row, const pb::EventFilter& f) {
  if (f.has_start_time() && row.occur_time_ms < TimestampMs(f.start_time()))
    return false;
  if (f.has_end_time() && row.occur_time_ms >= TimestampMs(f.end_time()))
    return false;
  if (f.topics_size() > 0) {
    bool any = false;
    for (const std::string& t : f.topics()) {
      if (t.size() >= 2 && t.compare(t.size() - 2, 2, ".*") == 0) {
        const std::string prefix = t.substr(0, t.size() - 1);
        any = any || row.topic.rfind(prefix, 0) == 0;
      } else {
        any = any || row.topic == t;
      }
    }
    if (!any) return false;
  }
  auto in = [](const auto& values, const auto& value) {
    return values.empty() ||
           std::find(values.begin(), values.end(), value) != values.end();
  };
  if (!in(f.panel_ids(), row.panel_id)) return false;
  if (f.door_ids_size() > 0 &&
      (!row.door_id || !in(f.door_ids(), *row.door_id)))
    return false;
  if (f.person_ids_size() > 0 &&
      (!row.person_id || !in(f.person_ids(), *row.person_id)))
    return false;
  if (!in(f.ou_ids(), row.ou_id)) return false;
  if (!f.family().empty() && row.family != f.family()) return false;
  return true;
}

bool ListOrderLess(const EventRow& a, const EventRow& b) {
  return a.occur_time_ms != b.occur_time_ms ? a.occur_time_ms < b.occur_time_ms
                                            : a.sequence < b.sequence;
}

std::vector<int64_t> ExpectedSequences(const std::vector<EventRow>& rows,
                                       const pb::EventFilter& filter,
                                       bool descending) {
  std::vector<EventRow> matching;
  for (const EventRow& row : rows) {
    if (Matches(row, filter)) matching.push_back(row);
  }
  std::sort(matching.begin(), matching.end(), ListOrderLess);
  if (descending) std::reverse(matching.begin(), matching.end());
  std::vector<int64_t> out;
  for (const EventRow& row : matching) out.push_back(row.sequence);
  return out;
}

std::string FormatUtc(int64_t ms, const char* format) {
  const time_t seconds =
      static_cast<time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  struct tm tm_utc;
  gmtime_r(&seconds, &tm_utc);
  char buffer[64];
  strftime(buffer, sizeof(buffer), format, &tm_utc);
  return buffer;
}

std::string Rfc3339Millis(int64_t ms) {
  char millis[8];
  std::snprintf(millis, sizeof(millis), ".%03dZ",
                static_cast<int>(((ms % 1000) + 1000) % 1000));
  return FormatUtc(ms, "%Y-%m-%dT%H:%M:%S") + millis;
}

// A small RFC 4180 parser: records end in CRLF, quoted fields may hold
// anything with quotes doubled. Fails the test on a bare CR or LF outside
// quotes.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  size_t i = 0;
  bool field_started = false;
  while (i < text.size()) {
    char c = text[i];
    if (!field_started && field.empty() && c == '"') {
      ++i;
      while (true) {
        if (i >= text.size()) {
          ADD_FAILURE() << "unterminated quoted field";
          return records;
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(text[i++]);
      }
      field_started = true;
      continue;
    }
    if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
      field_started = false;
      ++i;
    } else if (c == '\r') {
      if (i + 1 >= text.size() || text[i + 1] != '\n') {
        ADD_FAILURE() << "bare CR at " << i;
        return records;
      }
      record.push_back(std::move(field));
      field.clear();
      field_started = false;
      records.push_back(std::move(record));
      record.clear();
      i += 2;
    } else if (c == '\n') {
      ADD_FAILURE() << "bare LF at " << i;
      return records;
    } else {
      field.push_back(c);
      field_started = true;
      ++i;
    }
  }
  if (!record.empty() || !field.empty())
    ADD_FAILURE() << "last record lacks CRLF";
  return records;
}

// Appends `rows` through `writer` and returns them with their sequences,
// once committed.
std::vector<EventRow> AppendThrough(store::GroupCommitWriter& writer, std::vector<EventRow> rows) {
  std::mutex mu;
  std::condition_variable cv;
  size_t remaining = rows.size();
  for (size_t i = 0; i < rows.size(); ++i) {
    writer.Submit(rows[i], [&, i](absl::StatusOr<store::AppendResult> result) {
      std::lock_guard lock(mu);
      EXPECT_TRUE(result.ok()) << result.status();
      if (result.ok()) {
        EXPECT_FALSE(result->duplicate);
        rows[i].sequence = result->sequence;
      }
      --remaining;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return remaining == 0; });
  return rows;
}

class QueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat(
               "pdkarchive-query-", ::getpid(), "-",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "archive.db").string();

    auto sqlite_store = store::SqliteStore::Open(path_);
    ASSERT_TRUE(sqlite_store.ok()) << sqlite_store.status();
    store_ = *std::move(sqlite_store);
    writer_ =
        std::make_unique<store::GroupCommitWriter>(*store_, feed_);
    rows_ = Append(MakeRows(kRowCount, 0, 42));
    // Some rows with unusual values for export and lookup tests.
    EventRow special = MakeRows(1, 900000, 7)[0];
    special.topic = "door.request.denied";
    special.family = "panel";
    special.door_id = 9;
    special.door_name = "=HYPERLINK(\"x\")";
    special.person_id.reset();
    special.actor_user_id = "@admin";
    special.panel_id = "+p";
    special.raw = "=raw stays, \"as is\"";
    special.occur_time_ms = kBaseMs + 7;
    special.receive_time_ms = kBaseMs + 507;
    std::vector<EventRow> appended = Append({special});
    rows_.push_back(appended[0]);
    special_sequence_ = appended[0].sequence;

    auto reader = store::EventReader::Open(path_);
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
    auto server = GrpcServer::Start("127.0.0.1:0", *reader_, feed_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = pb::EventArchive::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    if (writer_) writer_->Stop();
    writer_.reset();
    reader_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Appends `rows` through the writer and returns them with their sequences,
  // once committed.
  std::vector<EventRow> Append(std::vector<EventRow> rows) {
    return AppendThrough(*writer_, std::move(rows));
  }

  // Lists every page of `filter`; fails the test on an error.
  std::vector<int64_t> ListAll(const pb::EventFilter& filter, bool descending,
                               int page_size) {
    std::vector<int64_t> out;
    std::string token;
    for (int pages = 0; pages < 100000; ++pages) {
      pb::ListEventsRequest request;
      *request.mutable_filter() = filter;
      request.set_page_size(page_size);
      request.set_descending(descending);
      request.set_page_token(token);
      pb::ListEventsResponse response;
      grpc::ClientContext context;
      grpc::Status status = stub_->ListEvents(&context, request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      for (const pb::Event& event : response.events())
        out.push_back(event.sequence());
      token = response.next_page_token();
      if (token.empty()) break;
    }
    return out;
  }

  grpc::Status List(const pb::ListEventsRequest& request,
                    pb::ListEventsResponse* response) {
    grpc::ClientContext context;
    return stub_->ListEvents(&context, request, response);
  }

  grpc::Status Count(const pb::CountEventsRequest& request,
                     pb::CountEventsResponse* response) {
    grpc::ClientContext context;
    return stub_->CountEvents(&context, request, response);
  }

  // The whole export as text, and the chunks' sizes.
  grpc::Status Export(const pb::ExportEventsRequest& request, std::string* text,
                      std::vector<size_t>* chunk_sizes = nullptr) {
    grpc::ClientContext context;
    auto stream = stub_->ExportEvents(&context, request);
    pb::ExportEventsResponse response;
    while (stream->Read(&response)) {
      text->append(response.csv_chunk());
      if (chunk_sizes != nullptr)
        chunk_sizes->push_back(response.csv_chunk().size());
    }
    return stream->Finish();
  }

  const EventRow& RowBySequence(int64_t sequence) const {
    for (const EventRow& row : rows_) {
      if (row.sequence == sequence) return row;
    }
    static const EventRow* none = new EventRow();
    ADD_FAILURE() << "no row " << sequence;
    return *none;
  }

  std::filesystem::path dir_;
  std::string path_;
  store::LocalCommitFeed feed_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<store::GroupCommitWriter> writer_;
  std::unique_ptr<store::EventReader> reader_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::EventArchive::Stub> stub_;
  std::vector<EventRow> rows_;
  int64_t special_sequence_ = 0;
};

// A named filter for table-driven tests.
struct FilterCase {
  std::string name;
  pb::EventFilter filter;
};

std::vector<FilterCase> FilterCases() {
  std::vector<FilterCase> cases;
  auto add = [&](std::string name, auto fill) {
    FilterCase c{std::move(name), {}};
    fill(c.filter);
    cases.push_back(std::move(c));
  };
  add("everything", [](pb::EventFilter&) {});
  add("time range", [](pb::EventFilter& f) {
    SetMs(f.mutable_start_time(), kBaseMs + kDayMs);
    SetMs(f.mutable_end_time(), kBaseMs + 2 * kDayMs + 3 * kHourMs);
  });
  add("start only", [](pb::EventFilter& f) {
    SetMs(f.mutable_start_time(), kBaseMs + 4 * kDayMs);
  });
  add("end only", [](pb::EventFilter& f) {
    SetMs(f.mutable_end_time(), kBaseMs + kDayMs / 2);
  });
  add("exact topic", [](pb::EventFilter& f) { f.add_topics("door.forced"); });
  add("bare door topic", [](pb::EventFilter& f) { f.add_topics("door"); });
  add("door prefix", [](pb::EventFilter& f) { f.add_topics("door.*"); });
  add("two-level prefix and exact", [](pb::EventFilter& f) {
    f.add_topics("door.request.*");
    f.add_topics("ou.updated");
  });
  add("two prefixes", [](pb::EventFilter& f) {
    f.add_topics("door.request.*");
    f.add_topics("entity.*");
  });
  add("panels", [](pb::EventFilter& f) {
    f.add_panel_ids("p1");
    f.add_panel_ids("p3");
  });
  add("empty panel", [](pb::EventFilter& f) { f.add_panel_ids(""); });
  add("doors", [](pb::EventFilter& f) {
    f.add_door_ids(3);
    f.add_door_ids(7);
    f.add_door_ids(3);
  });
  add("people", [](pb::EventFilter& f) {
    f.add_person_ids(101);
    f.add_person_ids(120);
    f.add_person_ids(139);
  });
  add("ou", [](pb::EventFilter& f) { f.add_ou_ids("ou2"); });
  add("family org", [](pb::EventFilter& f) { f.set_family("org"); });
  add("family unknown", [](pb::EventFilter& f) { f.set_family("unknown"); });
  add("door and time", [](pb::EventFilter& f) {
    f.add_door_ids(5);
    SetMs(f.mutable_start_time(), kBaseMs + kDayMs);
    SetMs(f.mutable_end_time(), kBaseMs + 3 * kDayMs);
  });
  add("person and topic prefix", [](pb::EventFilter& f) {
    f.add_person_ids(110);
    f.add_person_ids(111);
    f.add_topics("door.*");
  });
  add("panel family time", [](pb::EventFilter& f) {
    f.add_panel_ids("p2");
    f.set_family("panel");
    SetMs(f.mutable_start_time(), kBaseMs + 2 * kDayMs);
  });
  add("everything at once", [](pb::EventFilter& f) {
    for (int d = 1; d <= 6; ++d) f.add_door_ids(d);
    for (int p = 100; p <= 125; ++p) f.add_person_ids(p);
    f.add_topics("door.request.*");
    f.add_topics("door.held");
    f.add_ou_ids("ou1");
    f.add_panel_ids("p1");
    f.add_panel_ids("p2");
    f.set_family("panel");
    SetMs(f.mutable_start_time(), kBaseMs + kHourMs);
    SetMs(f.mutable_end_time(), kBaseMs + 4 * kDayMs);
  });
  add("matches nothing", [](pb::EventFilter& f) { f.add_door_ids(999); });
  return cases;
}

TEST_F(QueryTest, ListEventsReturnsExactlyTheMatchingEventsInOrder) {
  for (const FilterCase& c : FilterCases()) {
    for (bool descending : {false, true}) {
      SCOPED_TRACE(absl::StrCat(c.name, descending ? " desc" : " asc"));
      std::vector<int64_t> expected =
          ExpectedSequences(rows_, c.filter, descending);
      EXPECT_EQ(ListAll(c.filter, descending, 1000), expected);
      if (c.name == "everything") {
        EXPECT_EQ(expected.size(), rows_.size());
      }
    }
  }
}

TEST_F(QueryTest, ListEventsSmallPagesSeeEveryEventOnceWhileEventsArrive) {
  for (bool descending : {false, true}) {
    SCOPED_TRACE(descending ? "desc" : "asc");
    pb::EventFilter filter;
    filter.add_topics("door.*");
    const std::vector<int64_t> before =
        ExpectedSequences(rows_, filter, descending);
    std::vector<int64_t> seen;
    std::vector<EventRow> added;
    std::string token;
    int64_t next_key = 100000 + (descending ? 50000 : 0);
    for (int page = 0; page < 10000; ++page) {
      pb::ListEventsRequest request;
      *request.mutable_filter() = filter;
      request.set_page_size(7 +
                            page % 53);  // page_size may change between pages
      request.set_descending(descending);
      request.set_page_token(token);
      pb::ListEventsResponse response;
      ASSERT_TRUE(List(request, &response).ok());
      for (const pb::Event& event : response.events())
        seen.push_back(event.sequence());
      token = response.next_page_token();
      if (token.empty()) break;
      // New events land before, inside and after the listed range.
      std::vector<EventRow> more =
          MakeRows(3, next_key, static_cast<uint32_t>(page));
      next_key += 3;
      more[0].occur_time_ms = kBaseMs - kDayMs;
      more[2].occur_time_ms = kBaseMs + 6 * kDayMs;
      for (EventRow& row : more) row.topic = "door.forced";
      for (EventRow& row : Append(more)) added.push_back(row);
    }
    std::set<int64_t> unique(seen.begin(), seen.end());
    EXPECT_EQ(unique.size(), seen.size()) << "an event came twice";
    for (int64_t sequence : before)
      EXPECT_EQ(unique.count(sequence), 1u) << sequence;
    // What came back is in order, whichever new events it includes.
    std::vector<EventRow> all = rows_;
    all.insert(all.end(), added.begin(), added.end());
    std::vector<EventRow> seen_rows;
    for (int64_t sequence : seen) {
      for (const EventRow& row : all) {
        if (row.sequence == sequence) seen_rows.push_back(row);
      }
    }
    ASSERT_EQ(seen_rows.size(), seen.size());
    for (size_t i = 1; i < seen_rows.size(); ++i) {
      if (descending) {
        EXPECT_TRUE(ListOrderLess(seen_rows[i], seen_rows[i - 1]));
      } else {
        EXPECT_TRUE(ListOrderLess(seen_rows[i - 1], seen_rows[i]));
      }
    }
    rows_ = all;
  }
}

TEST_F(QueryTest, ListEventsPageSizeDefaultsAndCaps) {
  pb::ListEventsRequest request;
  pb::ListEventsResponse response;
  ASSERT_TRUE(List(request, &response).ok());
  EXPECT_EQ(response.events_size(), 100);
  EXPECT_FALSE(response.next_page_token().empty());

  request.set_page_size(5000);
  response.Clear();
  ASSERT_TRUE(List(request, &response).ok());
  EXPECT_EQ(response.events_size(), 1000);

  request.set_page_size(-1);
  grpc::Status status = List(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("page_size"), std::string::npos);

  // The last page carries no token.
  request.set_page_size(1000);
  request.mutable_filter()->add_door_ids(4);
  response.Clear();
  ASSERT_TRUE(List(request, &response).ok());
  EXPECT_LT(response.events_size(), 1000);
  EXPECT_TRUE(response.next_page_token().empty());
}

TEST_F(QueryTest, ListEventsRejectsForgedAndMismatchedTokens) {
  pb::ListEventsRequest first;
  first.mutable_filter()->add_door_ids(3);
  first.mutable_filter()->add_door_ids(5);
  first.set_page_size(10);
  pb::ListEventsResponse response;
  ASSERT_TRUE(List(first, &response).ok());
  const std::string token = response.next_page_token();
  ASSERT_FALSE(token.empty());

  auto try_token = [&](const pb::ListEventsRequest& base,
                       const std::string& t) {
    pb::ListEventsRequest request = base;
    request.set_page_token(t);
    pb::ListEventsResponse out;
    return List(request, &out);
  };

  // Same filter with values reordered and a different page size: accepted.
  pb::ListEventsRequest same = first;
  same.mutable_filter()->clear_door_ids();
  same.mutable_filter()->add_door_ids(5);
  same.mutable_filter()->add_door_ids(3);
  same.set_page_size(3);
  EXPECT_TRUE(try_token(same, token).ok());

  std::string tampered = token;
  tampered[tampered.size() / 2] =
      tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  for (const std::string& bad : {std::string("garbage!"), std::string("AAAA"),
                                 tampered, token.substr(0, token.size() - 4)}) {
    grpc::Status status = try_token(first, bad);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(status.error_message(), "page_token is malformed") << bad;
  }

  pb::ListEventsRequest other_filter = first;
  other_filter.mutable_filter()->add_door_ids(6);
  pb::ListEventsRequest other_order = first;
  other_order.set_descending(true);
  pb::ListEventsRequest other_time = first;
  SetMs(other_time.mutable_filter()->mutable_start_time(), kBaseMs);
  for (const pb::ListEventsRequest& request :
       {other_filter, other_order, other_time}) {
    grpc::Status status = try_token(request, token);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(),
              "page_token does not match this filter/order");
  }
}

TEST_F(QueryTest, GetEventReturnsTheStoredRow) {
  for (int64_t sequence :
       {rows_.front().sequence, rows_[1234].sequence, special_sequence_}) {
    const EventRow& row = RowBySequence(sequence);
    pb::GetEventRequest request;
    request.set_sequence(sequence);
    pb::Event event;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->GetEvent(&context, request, &event).ok());
    EXPECT_EQ(event.sequence(), row.sequence);
    EXPECT_EQ(event.event_id(), row.event_id);
    EXPECT_EQ(event.topic(), row.topic);
    EXPECT_EQ(event.family(), row.family);
    EXPECT_EQ(event.panel_id(), row.panel_id);
    EXPECT_EQ(event.has_door_id(), row.door_id.has_value());
    if (row.door_id) {
      EXPECT_EQ(event.door_id(), *row.door_id);
    }
    EXPECT_EQ(event.has_person_id(), row.person_id.has_value());
    if (row.person_id) {
      EXPECT_EQ(event.person_id(), *row.person_id);
    }
    EXPECT_EQ(event.ou_id(), row.ou_id);
    EXPECT_EQ(TimestampMs(event.occur_time()), row.occur_time_ms);
    EXPECT_EQ(event.occur_time().nanos() % 1000000, 0);
    EXPECT_EQ(TimestampMs(event.receive_time()), row.receive_time_ms);
    EXPECT_EQ(event.door_name(), row.door_name);
    EXPECT_EQ(event.actor_user_id(), row.actor_user_id);
    EXPECT_EQ(event.subscription(), row.subscription);
    EXPECT_EQ(event.raw(), row.raw);
  }
  auto get_status = [&](int64_t sequence) {
    pb::GetEventRequest request;
    request.set_sequence(sequence);
    pb::Event event;
    grpc::ClientContext context;
    return stub_->GetEvent(&context, request, &event);
  };
  EXPECT_EQ(get_status(0).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(get_status(-4).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(get_status(0).error_message().find("sequence"), std::string::npos);
  EXPECT_EQ(get_status(99999999).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(QueryTest, InvalidFiltersAreRejectedNamingTheField) {
  struct Bad {
    std::string field;
    std::function<void(pb::EventFilter&)> fill;
  };
  std::vector<Bad> bads = {
      {"filter.start_time",
       [](pb::EventFilter& f) {
         SetMs(f.mutable_start_time(), kBaseMs + 10);
         SetMs(f.mutable_end_time(), kBaseMs + 10);
       }},
      {"filter.start_time",
       [](pb::EventFilter& f) {
         SetMs(f.mutable_start_time(), kBaseMs + 11);
         SetMs(f.mutable_end_time(), kBaseMs + 10);
       }},
      {"filter.start_time",
       [](pb::EventFilter& f) { f.mutable_start_time()->set_nanos(-1); }},
      {"filter.end_time",
       [](pb::EventFilter& f) { f.mutable_end_time()->set_nanos(1000000000); }},
      {"filter.end_time",
       [](pb::EventFilter& f) {
         f.mutable_end_time()->set_seconds(253402300800);
       }},
      {"filter.topics[1]",
       [](pb::EventFilter& f) {
         f.add_topics("door.forced");
         f.add_topics("");
       }},
      {"filter.topics[0]", [](pb::EventFilter& f) { f.add_topics("door*"); }},
      {"filter.topics[0]", [](pb::EventFilter& f) { f.add_topics("*"); }},
      {"filter.topics[0]", [](pb::EventFilter& f) { f.add_topics(".*"); }},
      {"filter.topics[0]",
       [](pb::EventFilter& f) { f.add_topics("door.*.allowed"); }},
      {"filter.topics[0]", [](pb::EventFilter& f) { f.add_topics("door.**"); }},
      {"filter.family", [](pb::EventFilter& f) { f.set_family("panels"); }},
      {"filter.door_ids",
       [](pb::EventFilter& f) {
         for (int i = 0; i < 1001; ++i) f.add_door_ids(i);
       }},
  };
  for (const Bad& bad : bads) {
    pb::EventFilter filter;
    bad.fill(filter);
    SCOPED_TRACE(filter.ShortDebugString().substr(0, 200));
    auto check = [&](const grpc::Status& status) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_NE(status.error_message().find(bad.field), std::string::npos)
          << status.error_message();
    };
    pb::ListEventsRequest list;
    *list.mutable_filter() = filter;
    pb::ListEventsResponse list_response;
    check(List(list, &list_response));

    pb::CountEventsRequest count;
    *count.mutable_filter() = filter;
    pb::CountEventsResponse count_response;
    check(Count(count, &count_response));

    pb::ExportEventsRequest export_request;
    *export_request.mutable_filter() = filter;
    std::string text;
    check(Export(export_request, &text));
    EXPECT_TRUE(text.empty());

    pb::WatchEventsRequest watch;
    *watch.mutable_filter() = filter;
    grpc::ClientContext context;
    auto stream = stub_->WatchEvents(&context, watch);
    pb::Event event;
    EXPECT_FALSE(stream->Read(&event));
    check(stream->Finish());
  }

  pb::WatchEventsRequest watch;
  watch.set_after_sequence(-1);
  grpc::ClientContext context;
  auto stream = stub_->WatchEvents(&context, watch);
  pb::Event event;
  EXPECT_FALSE(stream->Read(&event));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("after_sequence"), std::string::npos);
}

// Independent count: key text per dimension.
std::string KeyOf(const EventRow& row, pb::Dimension dimension) {
  switch (dimension) {
    case pb::DIMENSION_TOPIC:
      return row.topic;
    case pb::DIMENSION_PANEL:
      return row.panel_id;
    case pb::DIMENSION_DOOR:
      return row.door_id ? std::to_string(*row.door_id) : "";
    case pb::DIMENSION_PERSON:
      return row.person_id ? std::to_string(*row.person_id) : "";
    case pb::DIMENSION_HOUR:
      return FormatUtc(row.occur_time_ms, "%Y-%m-%dT%H:00:00Z");
    case pb::DIMENSION_DAY:
      return FormatUtc(row.occur_time_ms, "%Y-%m-%d");
    default:
      return "?";
  }
}

TEST_F(QueryTest, CountEventsMatchesIndependentCounts) {
  const std::vector<std::vector<pb::Dimension>> groupings = {
      {},
      {pb::DIMENSION_TOPIC},
      {pb::DIMENSION_PANEL},
      {pb::DIMENSION_DOOR},
      {pb::DIMENSION_PERSON},
      {pb::DIMENSION_HOUR},
      {pb::DIMENSION_DAY},
      {pb::DIMENSION_DAY, pb::DIMENSION_DOOR},
      {pb::DIMENSION_DOOR, pb::DIMENSION_DAY},
      {pb::DIMENSION_PANEL, pb::DIMENSION_TOPIC, pb::DIMENSION_HOUR},
      {pb::DIMENSION_PERSON, pb::DIMENSION_TOPIC, pb::DIMENSION_DOOR,
       pb::DIMENSION_DAY, pb::DIMENSION_PANEL, pb::DIMENSION_HOUR},
  };
  std::vector<FilterCase> filters = FilterCases();
  for (const FilterCase& c : filters) {
    for (const std::vector<pb::Dimension>& group_by : groupings) {
      SCOPED_TRACE(absl::StrCat(c.name, " / ", group_by.size(), " dimensions"));
      std::map<std::vector<std::string>, int64_t> expected;
      int64_t expected_total = 0;
      for (const EventRow& row : rows_) {
        if (!Matches(row, c.filter)) continue;
        std::vector<std::string> key;
        for (pb::Dimension d : group_by) key.push_back(KeyOf(row, d));
        ++expected[key];
        ++expected_total;
      }
      if (group_by.empty()) expected[{}] += 0;  // one group even when 0

      pb::CountEventsRequest request;
      *request.mutable_filter() = c.filter;
      for (pb::Dimension d : group_by) request.add_group_by(d);
      pb::CountEventsResponse response;
      grpc::Status status = Count(request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(response.total(), expected_total);
      // std::map orders keys as the API promises (byte-wise, element by
      // element).
      std::vector<std::pair<std::vector<std::string>, int64_t>> got;
      for (const pb::Group& group : response.groups()) {
        got.emplace_back(
            std::vector<std::string>(group.key().begin(), group.key().end()),
            group.count());
      }
      std::vector<std::pair<std::vector<std::string>, int64_t>> want(
          expected.begin(), expected.end());
      EXPECT_EQ(got, want);
    }
  }
}

TEST_F(QueryTest, CountEventsRejectsBadGroupBy) {
  auto count_status = [&](std::vector<int> group_by) {
    pb::CountEventsRequest request;
    for (int d : group_by) request.add_group_by(static_cast<pb::Dimension>(d));
    pb::CountEventsResponse response;
    return Count(request, &response);
  };
  grpc::Status unspecified = count_status({pb::DIMENSION_UNSPECIFIED});
  EXPECT_EQ(unspecified.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(unspecified.error_message().find("group_by[0]"), std::string::npos);
  grpc::Status repeated =
      count_status({pb::DIMENSION_DAY, pb::DIMENSION_DOOR, pb::DIMENSION_DAY});
  EXPECT_EQ(repeated.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(repeated.error_message().find("group_by[2]"), std::string::npos);
  grpc::Status unknown = count_status({99});
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(unknown.error_message().find("group_by[0]"), std::string::npos);
}

const std::vector<std::string>& CsvHeader() {
  static const auto* header = new std::vector<std::string>{
      "sequence", "occur_time",    "receive_time", "topic",     "family",
      "panel_id", "door_id",       "door_name",    "person_id", "ou_id",
      "event_id", "actor_user_id", "subscription"};
  return *header;
}

std::string Guarded(const std::string& text) {
  if (!text.empty() &&
      std::string("=+-@\t\r").find(text[0]) != std::string::npos) {
    return "'" + text;
  }
  return text;
}

std::vector<std::string> ExpectedCsvRecord(const EventRow& row,
                                           bool include_raw) {
  std::vector<std::string> record = {
      std::to_string(row.sequence),
      Rfc3339Millis(row.occur_time_ms),
      Rfc3339Millis(row.receive_time_ms),
      Guarded(row.topic),
      Guarded(row.family),
      Guarded(row.panel_id),
      row.door_id ? std::to_string(*row.door_id) : "",
      Guarded(row.door_name),
      row.person_id ? std::to_string(*row.person_id) : "",
      Guarded(row.ou_id),
      Guarded(row.event_id),
      Guarded(row.actor_user_id),
      Guarded(row.subscription)};
  if (include_raw) record.push_back(row.raw);
  return record;
}

TEST_F(QueryTest, ExportEventsIsRfc4180CsvOfTheMatchingRows) {
  // Enough rows to need several chunks and several keyset batches.
  std::vector<EventRow> bulk = MakeRows(12000, 500000, 99);
  for (EventRow& row : bulk) row.raw.append(std::string(40, 'x'));
  for (EventRow& row : Append(bulk)) rows_.push_back(row);

  for (bool include_raw : {false, true}) {
    for (const FilterCase& c : FilterCases()) {
      if (c.name != "everything" && c.name != "door and time" &&
          c.name != "matches nothing") {
        continue;
      }
      SCOPED_TRACE(absl::StrCat(c.name, include_raw ? " with raw" : ""));
      pb::ExportEventsRequest request;
      *request.mutable_filter() = c.filter;
      request.set_include_raw(include_raw);
      std::string text;
      std::vector<size_t> chunks;
      grpc::Status status = Export(request, &text, &chunks);
      ASSERT_TRUE(status.ok()) << status.error_message();
      // Chunks of about 256 KiB, far below gRPC's 4 MiB message limit.
      for (size_t size : chunks) EXPECT_LT(size, 512u * 1024u);
      if (c.name == "everything") {
        EXPECT_GT(chunks.size(), 5u);
      }

      std::vector<std::vector<std::string>> records = ParseCsv(text);
      ASSERT_FALSE(records.empty());
      std::vector<std::string> header = CsvHeader();
      if (include_raw) header.push_back("raw");
      EXPECT_EQ(records[0], header);
      std::vector<int64_t> expected = ExpectedSequences(rows_, c.filter, false);
      ASSERT_EQ(records.size(), expected.size() + 1);
      for (size_t i = 0; i < expected.size(); ++i) {
        ASSERT_EQ(records[i + 1],
                  ExpectedCsvRecord(RowBySequence(expected[i]), include_raw))
            << "row " << i;
      }
    }
  }
}

TEST_F(QueryTest, ExportEventsGuardsAgainstFormulaInjection) {
  pb::ExportEventsRequest request;
  SetMs(request.mutable_filter()->mutable_start_time(), kBaseMs + 7);
  SetMs(request.mutable_filter()->mutable_end_time(), kBaseMs + 8);
  request.mutable_filter()->add_door_ids(9);
  request.set_include_raw(true);
  std::string text;
  ASSERT_TRUE(Export(request, &text).ok());
  // The line exactly as written: quoted where needed, guarded text cells,
  // raw untouched.
  const std::string expected_line = absl::StrCat(
      special_sequence_, ",2026-01-01T00:00:00.007Z,2026-01-01T00:00:00.507Z,",
      "door.request.denied,panel,'+p,9,\"'=HYPERLINK(\"\"x\"\")\",,",
      RowBySequence(special_sequence_).ou_id, ",",
      RowBySequence(special_sequence_).event_id, ",'@admin,default,",
      "\"=raw stays, \"\"as is\"\"\"\r\n");
  EXPECT_NE(text.find(expected_line), std::string::npos) << text;
  std::vector<std::vector<std::string>> records = ParseCsv(text);
  bool found = false;
  for (const auto& record : records) {
    if (record[0] == std::to_string(special_sequence_)) {
      found = true;
      EXPECT_EQ(record[7], "'=HYPERLINK(\"x\")");
      EXPECT_EQ(record.back(), "=raw stays, \"as is\"");
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(QueryTest, WatchEventsPushesMatchingCommitsPromptly) {
  pb::WatchEventsRequest request;
  request.mutable_filter()->add_door_ids(11);
  request.set_after_sequence(rows_.back().sequence);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(20));
  auto stream = stub_->WatchEvents(&context, request);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  for (int round = 0; round < 3; ++round) {
    std::vector<EventRow> rows = MakeRows(2, 700000 + round * 2, 5);
    rows[0].door_id = 10;  // does not match, and commits first
    rows[1].door_id = 11;
    const int64_t other = Append({rows[0]})[0].sequence;
    const auto committed_at = std::chrono::steady_clock::now();
    const int64_t wanted = Append({rows[1]})[0].sequence;
    pb::Event event;
    ASSERT_TRUE(stream->Read(&event));
    const auto latency = std::chrono::steady_clock::now() - committed_at;
    EXPECT_EQ(event.sequence(), wanted);
    EXPECT_NE(event.sequence(), other);
    EXPECT_EQ(event.door_id(), 11);
    EXPECT_LT(latency, std::chrono::milliseconds(500));
  }
  context.TryCancel();
  pb::Event event;
  while (stream->Read(&event)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(QueryTest, WatchEventsSendsTheBacklogThenLiveEventsInSequenceOrder) {
  pb::WatchEventsRequest request;
  request.mutable_filter()->add_topics("door.*");
  const int64_t after = rows_[rows_.size() / 3].sequence;
  request.set_after_sequence(after);
  std::vector<int64_t> expected;
  for (const EventRow& row : rows_) {
    if (row.sequence > after && Matches(row, request.filter()))
      expected.push_back(row.sequence);
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_GT(expected.size(), 500u);  // more than one read batch

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  auto stream = stub_->WatchEvents(&context, request);
  std::vector<int64_t> got;
  pb::Event event;
  while (got.size() < expected.size() && stream->Read(&event))
    got.push_back(event.sequence());
  EXPECT_EQ(got, expected);

  std::vector<EventRow> live = MakeRows(50, 600000, 11);
  for (size_t i = 0; i < live.size(); ++i) {
    live[i].topic = i % 2 == 0 ? "door.request.allowed" : "ou.updated";
  }
  live = Append(live);
  std::vector<int64_t> live_expected;
  for (const EventRow& row : live) {
    if (row.topic == "door.request.allowed")
      live_expected.push_back(row.sequence);
  }
  std::vector<int64_t> live_got;
  while (live_got.size() < live_expected.size() && stream->Read(&event)) {
    live_got.push_back(event.sequence());
  }
  EXPECT_EQ(live_got, live_expected);
  context.TryCancel();
  while (stream->Read(&event)) {
  }
  stream->Finish();
}

TEST_F(QueryTest, WatchEventsEndPromptlyOnServerShutdown) {
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<pb::Event>>> streams;
  for (int i = 0; i < 3; ++i) {
    pb::WatchEventsRequest request;
    request.set_after_sequence(rows_.back().sequence - 1);
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(stub_->WatchEvents(contexts.back().get(), request));
    pb::Event event;
    ASSERT_TRUE(streams.back()->Read(&event));
    EXPECT_EQ(event.sequence(), rows_.back().sequence);
  }
  const auto start = std::chrono::steady_clock::now();
  server_->Shutdown(std::chrono::seconds(10));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  for (auto& stream : streams) {
    pb::Event event;
    EXPECT_FALSE(stream->Read(&event));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  // Commits after shutdown reach no one and break nothing.
  Append(MakeRows(5, 990000, 3));
}

TEST_F(QueryTest, ManyConcurrentReadersWhileWriting) {
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    int64_t key = 2000000;
    while (!stop) {
      Append(MakeRows(20, key, static_cast<uint32_t>(key)));
      key += 20;
    }
  });
  std::vector<std::thread> readers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 6; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        pb::ListEventsRequest request;
        request.set_page_size(200);
        request.mutable_filter()->add_door_ids(1 + (t + i) % 12);
        pb::ListEventsResponse response;
        grpc::ClientContext context;
        if (!stub_->ListEvents(&context, request, &response).ok()) ++failures;
        pb::CountEventsRequest count;
        count.add_group_by(pb::DIMENSION_DAY);
        pb::CountEventsResponse count_response;
        grpc::ClientContext count_context;
        if (!stub_->CountEvents(&count_context, count, &count_response).ok())
          ++failures;
      }
    });
  }
  for (std::thread& t : readers) t.join();
  stop = true;
  writer.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(QueryTest, CancelledExportsAndWatchesEndCleanly) {
  // Cancel an export after its first chunk, and a watch in its backlog.
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext export_context;
    pb::ExportEventsRequest export_request;
    export_request.set_include_raw(true);
    auto export_stream = stub_->ExportEvents(&export_context, export_request);
    pb::ExportEventsResponse chunk;
    ASSERT_TRUE(export_stream->Read(&chunk));
    export_context.TryCancel();
    while (export_stream->Read(&chunk)) {
    }
    EXPECT_EQ(export_stream->Finish().error_code(),
              grpc::StatusCode::CANCELLED);

    grpc::ClientContext watch_context;
    pb::WatchEventsRequest watch_request;
    auto watch_stream = stub_->WatchEvents(&watch_context, watch_request);
    pb::Event event;
    ASSERT_TRUE(watch_stream->Read(&event));
    watch_context.TryCancel();
    while (watch_stream->Read(&event)) {
    }
    EXPECT_EQ(watch_stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // The server still answers, and shuts down promptly.
  pb::ListEventsRequest request;
  pb::ListEventsResponse response;
  EXPECT_TRUE(List(request, &response).ok());
  const auto start = std::chrono::steady_clock::now();
  server_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

TEST_F(QueryTest, HealthCheckingAndReflectionAreOn) {
  grpc::GenericStub generic(channel_);
  // grpc.health.v1.HealthCheckRequest{service: "pdk.archive.v1.EventArchive"}.
  const std::string service = "pdk.archive.v1.EventArchive";
  grpc::ByteBuffer health_request = ToBuffer(
      std::string("\x0a") + static_cast<char>(service.size()) + service);
  grpc::ByteBuffer health_response;
  grpc::ClientContext health_context;
  std::promise<grpc::Status> health_done;
  generic.UnaryCall(
      &health_context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
      &health_request, &health_response,
      [&](grpc::Status status) { health_done.set_value(status); });
  grpc::Status health_status = health_done.get_future().get();
  ASSERT_TRUE(health_status.ok()) << health_status.error_message();
  EXPECT_EQ(ToString(health_response), std::string("\x08\x01"));  // SERVING

  // grpc.reflection.v1alpha.ServerReflectionRequest{list_services: ""}.
  grpc::CompletionQueue cq;
  grpc::ClientContext reflection_context;
  auto call = generic.PrepareCall(
      &reflection_context,
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  ASSERT_NE(call, nullptr);
  auto await = [&](intptr_t tag) {
    void* got = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&got, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(got), tag);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(await(1));
  grpc::ByteBuffer list_services = ToBuffer(std::string("\x3a\x00", 2));
  call->Write(list_services, reinterpret_cast<void*>(2));
  ASSERT_TRUE(await(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(await(3));
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(4));
  ASSERT_TRUE(await(4));
  EXPECT_NE(ToString(reply).find(service), std::string::npos);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  await(5);
  EXPECT_TRUE(status.ok()) << status.error_message();
  cq.Shutdown();
  void* ignored_tag;
  bool ignored_ok;
  while (cq.Next(&ignored_tag, &ignored_ok)) {
  }
}

// ScanEach (the export's read) presents the rows List reads, in the same
// order, and resumes exactly after a visitor's stop or a full batch.
TEST_F(QueryTest, ScanEachVisitsWhatListReadsAndResumes) {
  store::EventFilter door;
  door.door_ids = {3, 4};
  store::EventFilter day;
  day.start_ms = kBaseMs;
  day.end_ms = kBaseMs + kDayMs;
  store::EventFilter topic;
  topic.topics = {"door.*"};
  store::EventFilter none;
  none.topics = {"no.such.topic"};
  for (const store::EventFilter& filter : {store::EventFilter{}, door, day, topic, none}) {
    for (bool with_raw : {false, true}) {
      store::ListQuery query;
      query.filter = filter;
      query.limit = 100000;
      query.with_raw = with_raw;
      auto page = reader_->List(query);
      ASSERT_TRUE(page.ok()) << page.status();
      std::vector<EventRow> expected = page->rows;
      for (EventRow& row : expected) row.dedupe_key.clear();

      std::vector<EventRow> scanned;
      std::optional<store::Cursor> cursor;
      bool exhausted = false;
      for (int calls = 0; !exhausted; ++calls) {
        ASSERT_LT(calls, 10000);
        // Stops after every 7th row and at batches of 50 rows.
        auto progress = reader_->ScanEach(
            filter, cursor, 50, with_raw, [&](const store::EventView& view) {
              EventRow& row = scanned.emplace_back();
              row.sequence = view.sequence;
              row.event_id = view.event_id;
              row.topic = view.topic;
              row.family = view.family;
              row.panel_id = view.panel_id;
              row.ou_id = view.ou_id;
              row.door_id = view.door_id;
              row.door_name = view.door_name;
              row.person_id = view.person_id;
              row.actor_user_id = view.actor_user_id;
              row.occur_time_ms = view.occur_time_ms;
              row.receive_time_ms = view.receive_time_ms;
              row.subscription = view.subscription;
              row.raw = view.raw;
              return scanned.size() % 7 != 0;
            });
        ASSERT_TRUE(progress.ok()) << progress.status();
        ASSERT_LE(progress->rows, 50);
        if (progress->last) {
          EXPECT_EQ(progress->last->sequence, scanned.back().sequence);
          cursor = progress->last;
        }
        exhausted = progress->exhausted;
      }
      ASSERT_EQ(scanned.size(), expected.size());
      for (size_t i = 0; i < expected.size(); ++i) {
        ASSERT_EQ(scanned[i], expected[i]) << "row " << i;
      }
    }
  }
}

// EXPLAIN QUERY PLAN of the statements List runs: every common shape is
// answered from an index in report order, never a full scan or a sort.
TEST_F(QueryTest, ListQueriesUseAnIndex) {
  auto plan = [&](const store::EventFilter& filter, bool with_cursor,
                  bool descending) {
    store::ListQuery query;
    query.filter = filter;
    query.descending = descending;
    if (with_cursor) query.after = store::Cursor{kBaseMs + kDayMs, 1500};
    auto details = reader_->ExplainList(query);
    EXPECT_TRUE(details.ok()) << details.status();
    std::string joined;
    for (const std::string& line : *details) joined += line + "\n";
    return joined;
  };
  store::EventFilter time;
  time.start_ms = kBaseMs;
  time.end_ms = kBaseMs + kDayMs;
  store::EventFilter door = time;
  door.door_ids = {3};
  store::EventFilter doors = time;
  doors.door_ids = {3, 4, 5};
  store::EventFilter person = time;
  person.person_ids = {101};
  store::EventFilter topic = time;
  topic.topics = {"door.forced"};
  store::EventFilter prefix = time;
  prefix.topics = {"door.*"};
  store::EventFilter panel = time;
  panel.panel_ids = {"1070001"};
  store::EventFilter panels = time;
  panels.panel_ids = {"1070001", "1070002"};
  store::EventFilter open_time;  // no bounds at all: ordered index walk

  store::EventFilter door_only;
  door_only.door_ids = {3};
  store::EventFilter prefix_only;
  prefix_only.topics = {"door.request.*"};

  // Where the planner may fairly choose between two indexes (a topic prefix
  // within a time range is walked in time order), either is accepted.
  struct Case {
    std::string name;
    store::EventFilter filter;
    std::vector<std::string> indexes;
  };
  for (const Case& c : std::vector<Case>{
           {"time", time, {"events_by_time"}},
           {"door", door, {"events_by_door"}},
           {"doors", doors, {"events_by_door"}},
           {"door only", door_only, {"events_by_door"}},
           {"person", person, {"events_by_person"}},
           {"panel", panel, {"events_by_panel"}},
           {"panels", panels, {"events_by_panel"}},
           {"topic", topic, {"events_by_topic"}},
           {"prefix", prefix, {"events_by_topic", "events_by_time"}},
           {"prefix only", prefix_only, {"events_by_topic", "events_by_time"}},
           {"open", open_time, {"events_by_time"}}}) {
    for (bool with_cursor : {false, true}) {
      for (bool descending : {false, true}) {
        const std::string text = plan(c.filter, with_cursor, descending);
        SCOPED_TRACE(absl::StrCat(c.name, with_cursor ? " cursor" : "",
                                  descending ? " desc" : "", "\n", text));
        bool indexed = false;
        for (const std::string& index : c.indexes) {
          indexed =
              indexed || text.find("USING INDEX " + index) != std::string::npos;
        }
        EXPECT_TRUE(indexed);
        if (::testing::Test::HasFailure() || getenv("SHOW_PLANS") != nullptr) {
          std::printf("%s%s%s:\n%s", c.name.c_str(),
                      with_cursor ? " cursor" : "", descending ? " desc" : "",
                      text.c_str());
        }
        EXPECT_EQ(text.find("SCAN events\n"), std::string::npos);
        // The last arm reads the events not merged into the indexes yet by
        // sequence, and sorts them (a few thousand at most). Every other arm
        // comes out in report order: nothing is read whole and sorted.
        const size_t unmerged = text.rfind("SEARCH events USING INTEGER PRIMARY KEY (rowid>?)");
        ASSERT_NE(unmerged, std::string::npos);
        EXPECT_EQ(text.substr(0, unmerged).find("USE TEMP B-TREE FOR ORDER BY"),
                  std::string::npos);
      }
    }
  }
}


// Everything a reader answers, as text, for ReadsDoNotDependOnWhatIsMerged.
std::string ReadEverything(store::EventReader& reader, const std::vector<int64_t>& sequences) {
  std::string out;
  store::EventFilter all;
  store::EventFilter day;  // whole UTC days: counts come from the rollups
  day.start_ms = kBaseMs + kDayMs;
  day.end_ms = kBaseMs + 3 * kDayMs;
  store::EventFilter hours = day;  // not whole days: counts from the events
  hours.start_ms = *day.start_ms + kHourMs + 7;
  store::EventFilter door = day;
  door.door_ids = {3};
  store::EventFilter doors;
  doors.door_ids = {3, 4, 5};
  store::EventFilter person;
  person.person_ids = {101, 102};
  store::EventFilter prefix = day;
  prefix.topics = {"door.*"};
  store::EventFilter panel;
  panel.panel_ids = {"p1"};
  store::EventFilter panels = hours;
  panels.panel_ids = {"p1", "p2"};
  const std::vector<store::EventFilter> filters = {all,    day,    hours,  door, doors,
                                                   person, prefix, panel, panels};
  for (size_t f = 0; f < filters.size(); ++f) {
    for (bool descending : {false, true}) {
      store::ListQuery query;
      query.filter = filters[f];
      query.descending = descending;
      query.limit = 97;
      absl::StrAppend(&out, "list ", f, descending ? " desc" : "", ":");
      for (int pages = 0; pages < 1000; ++pages) {
        absl::StatusOr<store::ListPage> page = reader.List(query);
        EXPECT_TRUE(page.ok()) << page.status();
        if (!page.ok()) return out;
        for (const EventRow& row : page->rows) {
          absl::StrAppend(&out, " ", row.sequence, "/", row.occur_time_ms, "/", row.panel_id,
                          "/", row.raw);
        }
        if (!page->more) break;
        query.after = store::Cursor{page->rows.back().occur_time_ms, page->rows.back().sequence};
      }
      out += "\n";
    }
    absl::StrAppend(&out, "export ", f, ":");
    std::optional<store::Cursor> after;
    for (int batches = 0; batches < 1000; ++batches) {
      absl::StatusOr<store::ScanProgress> progress = reader.ScanEach(
          filters[f], after, 113, /*with_raw=*/true, [&](const store::EventView& row) {
            absl::StrAppend(&out, " ", row.sequence, "/", std::string(row.topic), "/", std::string(row.raw));
            return true;
          });
      EXPECT_TRUE(progress.ok()) << progress.status();
      if (!progress.ok() || progress->exhausted || !progress->last) break;
      after = progress->last;
    }
    out += "\n";
    using store::Dimension;
    for (const std::vector<Dimension>& dimensions : std::vector<std::vector<Dimension>>{
             {},
             {Dimension::kTopic},
             {Dimension::kDoor, Dimension::kDay},
             {Dimension::kDay, Dimension::kDoor},
             {Dimension::kPanel, Dimension::kTopic},
             {Dimension::kPerson},
             {Dimension::kHour, Dimension::kDoor}}) {
      absl::StatusOr<std::vector<store::CountGroup>> groups = reader.Count(filters[f], dimensions);
      EXPECT_TRUE(groups.ok()) << groups.status();
      if (!groups.ok()) return out;
      absl::StrAppend(&out, "count ", f, " by ", dimensions.size(), ":");
      for (const store::CountGroup& group : *groups) {
        absl::StrAppend(&out, " ", absl::StrJoin(group.key, "|"), "=", group.count);
      }
      out += "\n";
    }
  }
  for (size_t i = 0; i < sequences.size(); i += 97) {
    absl::StatusOr<EventRow> row = reader.Get(sequences[i]);
    EXPECT_TRUE(row.ok()) << row.status();
    if (row.ok()) absl::StrAppend(&out, "get ", row->sequence, " ", row->raw, "\n");
  }
  return out;
}

// Each test in its own empty directory, removed afterwards.
class DeferredIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-deferred");
    path_ = (dir_ / "archive.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Polls the file for up to 5 s until no event in it is unmerged; returns
  // how many are left.
  static int64_t WaitUntilNoneUnmergedInFile(SQLite::Database& db) {
    int64_t unmerged = -1;
    for (int i = 0; i < 100 && unmerged != 0; ++i) {
      unmerged = db.execAndGet("SELECT count(*) FROM events WHERE merged = 0").getInt64();
      if (unmerged != 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return unmerged;
  }
  // Polls what the writer reports (pdkarchive_unmerged_events) the same way.
  static int64_t WaitUntilNoneUnmergedReported(const store::GroupCommitWriter& writer) {
    auto reported_now = [&] {
      return store::FindEngineStat(writer.stats().engine, "unmerged_events").value_or(-1);
    };
    int64_t reported = reported_now();
    for (int i = 0; i < 250 && reported != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      reported = reported_now();
    }
    return reported;
  }

  std::filesystem::path dir_;
  std::string path_;
};

// The newest events are stored unmerged, in no secondary index and not yet
// in the rollups (store/sqlite_store.h, SqliteStore::Merge); every read must
// answer the same whichever of its events are merged.
TEST_F(DeferredIndexTest, ReadsDoNotDependOnWhatIsMerged) {
  const std::vector<EventRow> rows = MakeRows(kRowCount, 0, 42);
  const size_t half = rows.size() / 2;
  // Batches of 100 are stored unmerged; batches of 3, merged at once.
  auto append = [](store::SqliteStore& store, std::span<const EventRow> part,
                   size_t batch = 100) {
    std::vector<int64_t> sequences;
    for (size_t i = 0; i < part.size(); i += batch) {
      auto results =
          store.AppendBatch(part.subspan(i, std::min<size_t>(batch, part.size() - i)));
      EXPECT_TRUE(results.ok()) << results.status();
      if (!results.ok()) return sequences;
      for (const store::AppendResult& r : *results) {
        EXPECT_FALSE(r.duplicate);
        sequences.push_back(r.sequence);
      }
    }
    return sequences;
  };

  // Archive one: nothing merged.
  const std::string unmerged_path = (dir_ / "unmerged.db").string();
  auto unmerged_store = store::SqliteStore::Open(unmerged_path);
  ASSERT_TRUE(unmerged_store.ok()) << unmerged_store.status();
  const std::vector<int64_t> sequences = append(**unmerged_store, rows);
  ASSERT_EQ(sequences.size(), rows.size());
  EXPECT_EQ((*unmerged_store)->unmerged_rows(), static_cast<int64_t>(rows.size()));
  auto unmerged_reader = store::EventReader::Open(unmerged_path);
  ASSERT_TRUE(unmerged_reader.ok()) << unmerged_reader.status();
  const std::string nothing_merged = ReadEverything(**unmerged_reader, sequences);

  // Archive two: the first half merged; then 300 events merged as they are
  // stored, the rest unmerged; then everything merged.
  const std::string mixed_path = (dir_ / "mixed.db").string();
  auto mixed_store = store::SqliteStore::Open(mixed_path);
  ASSERT_TRUE(mixed_store.ok()) << mixed_store.status();
  std::vector<int64_t> mixed_sequences =
      append(**mixed_store, std::span<const EventRow>(rows).first(half));
  ASSERT_TRUE((*mixed_store)->Merge());
  EXPECT_EQ((*mixed_store)->unmerged_rows(), 0);
  for (int64_t s : append(**mixed_store, std::span<const EventRow>(rows).subspan(half, 300),
                         /*batch=*/3)) {
    mixed_sequences.push_back(s);
  }
  EXPECT_EQ((*mixed_store)->unmerged_rows(), 0);
  for (int64_t s : append(**mixed_store, std::span<const EventRow>(rows).subspan(half + 300))) {
    mixed_sequences.push_back(s);
  }
  EXPECT_EQ(mixed_sequences, sequences);
  EXPECT_EQ((*mixed_store)->unmerged_rows(), static_cast<int64_t>(rows.size() - half - 300));
  auto mixed_reader = store::EventReader::Open(mixed_path);
  ASSERT_TRUE(mixed_reader.ok()) << mixed_reader.status();
  const std::string half_merged = ReadEverything(**mixed_reader, sequences);
  ASSERT_TRUE((*mixed_store)->Merge());
  const std::string all_merged = ReadEverything(**mixed_reader, sequences);

  // Not vacuous: every list and export saw rows, every count some groups.
  EXPECT_GT(nothing_merged.size(), 100000u);
  EXPECT_EQ(nothing_merged.find(":\n"), std::string::npos) << "a read came back empty";
  EXPECT_EQ(half_merged, nothing_merged);
  EXPECT_EQ(all_merged, nothing_merged);
  // And the totals are right.
  absl::StatusOr<std::vector<store::CountGroup>> total = (*mixed_reader)->Count({}, {});
  ASSERT_TRUE(total.ok()) << total.status();
  ASSERT_EQ(total->size(), 1u);
  EXPECT_EQ((*total)[0].count, static_cast<int64_t>(rows.size()));

  // The merged events are in the indexes and the rollups, on disk.
  {
    SQLite::Database db(mixed_path, SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM events WHERE merged = 0").getInt64(), 0);
    EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM events INDEXED BY events_by_time "
                            "WHERE merged = 1 AND occur_time > -1e18").getInt64(),
              static_cast<int64_t>(rows.size()));
    EXPECT_EQ(db.execAndGet("SELECT SUM(n) FROM counts_daily").getInt64(),
              static_cast<int64_t>(rows.size()));
    EXPECT_EQ(db.execAndGet("SELECT SUM(n) FROM counts_daily_topic").getInt64(),
              static_cast<int64_t>(rows.size()));
    EXPECT_EQ(db.execAndGet("SELECT value FROM archive_meta WHERE name = 'merged_through'")
                  .getInt64(),
              sequences.back());
  }
  unmerged_reader->reset();
  mixed_reader->reset();
  unmerged_store->reset();
  mixed_store->reset();
}

// Events left unmerged under load are merged by the writer once nothing has
// arrived for a moment: seen in the file, while the writer is still running.
TEST_F(DeferredIndexTest, TheWriterMergesWhatIsLeftOnceIdle) {
  auto store = store::SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<EventRow> rows = MakeRows(21, 0, 5);
  // 20 in one batch, stored unmerged: too few for a merge while busy.
  ASSERT_TRUE((*store)->AppendBatch(std::span<const EventRow>(rows).first(20)).ok());
  ASSERT_EQ((*store)->unmerged_rows(), 20);
  store::LocalCommitFeed feed;
  store::GroupCommitWriter writer(**store, feed);
  std::promise<absl::StatusOr<store::AppendResult>> done;
  writer.Submit(rows[20], [&](absl::StatusOr<store::AppendResult> r) { done.set_value(r); });
  absl::StatusOr<store::AppendResult> last = done.get_future().get();
  ASSERT_TRUE(last.ok()) << last.status();

  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(WaitUntilNoneUnmergedInFile(db), 0);
  // What /metrics reports as pdkarchive_unmerged_events follows.
  EXPECT_EQ(WaitUntilNoneUnmergedReported(writer), 0);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM events").getInt64(), 21);
  EXPECT_EQ(db.execAndGet("SELECT sum(n) FROM counts_daily").getInt64(), 21);
  EXPECT_EQ(db.execAndGet("SELECT value FROM archive_meta WHERE name = 'merged_through'")
                .getInt64(),
            20);
  writer.Stop();
}

// Events an earlier run left unmerged (a crash, or a kill before the idle
// merge) are merged soon after the writer starts, with no traffic at all.
TEST_F(DeferredIndexTest, TheWriterMergesWhatAnEarlierRunLeftWithoutTraffic) {
  {
    auto store = store::SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    const std::vector<EventRow> rows = MakeRows(20, 0, 5);
    ASSERT_TRUE((*store)->AppendBatch(rows).ok());
    ASSERT_EQ((*store)->unmerged_rows(), 20);
  }  // closed with its events unmerged, as a killed server leaves them
  auto store = store::SqliteStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ((*store)->unmerged_rows(), 20);
  store::LocalCommitFeed feed;
  store::GroupCommitWriter writer(**store, feed);
  SQLite::Database db(path_, SQLite::OPEN_READONLY);
  EXPECT_EQ(WaitUntilNoneUnmergedInFile(db), 0);
  EXPECT_EQ(db.execAndGet("SELECT sum(n) FROM counts_daily").getInt64(), 20);
  EXPECT_EQ(WaitUntilNoneUnmergedReported(writer), 0);
  writer.Stop();
}


// Sentinels and large filters (issue 13, item 7).

// The rollups keep "no door" as door INT64_MIN; a filter on that number asks
// for events whose door is that number, and no event here has it.
TEST_F(QueryTest, TheNoDoorSentinelMatchesNothing) {
  ASSERT_GT(std::count_if(rows_.begin(), rows_.end(),
                          [](const EventRow& row) { return !row.door_id; }),
            100);
  for (bool person : {false, true}) {
    SCOPED_TRACE(person ? "person_ids" : "door_ids");
    pb::EventFilter filter;
    if (person) {
      filter.add_person_ids(std::numeric_limits<int64_t>::min());
    } else {
      filter.add_door_ids(std::numeric_limits<int64_t>::min());
    }
    for (const std::vector<pb::Dimension>& by :
         {std::vector<pb::Dimension>{}, {pb::DIMENSION_DAY}, {pb::DIMENSION_DOOR},
          {pb::DIMENSION_TOPIC, pb::DIMENSION_DAY}}) {
      pb::CountEventsRequest request;
      *request.mutable_filter() = filter;
      for (pb::Dimension d : by) request.add_group_by(d);
      pb::CountEventsResponse response;
      ASSERT_TRUE(Count(request, &response).ok());
      EXPECT_EQ(response.total(), 0) << by.size() << " dimensions";
    }
    EXPECT_TRUE(ListAll(filter, false, 100).empty());
  }
}

// Hundreds of "prefix.*" patterns (SQLite refused an OR per pattern: "Expression
// tree is too large") and every field at its 1000-value limit work, and
// answer as the same filter written out would.
TEST_F(QueryTest, FiltersWithHundredsOfValuesPerFieldWork) {
  pb::EventFilter wide;
  wide.add_topics("door.*");
  wide.add_topics("ou.updated");
  for (int i = 0; wide.topics_size() < 1000; ++i) {
    wide.add_topics(i % 2 == 0 ? absl::StrCat("none", i, ".*") : absl::StrCat("none.", i));
  }
  pb::EventFilter narrow;
  narrow.add_topics("door.*");
  narrow.add_topics("ou.updated");
  const std::vector<int64_t> expected = ExpectedSequences(rows_, narrow, false);
  ASSERT_GT(expected.size(), 500u);
  EXPECT_EQ(ListAll(wide, false, 1000), expected);
  EXPECT_EQ(ListAll(wide, true, 300).size(), expected.size());
  for (const std::vector<pb::Dimension>& by :
       {std::vector<pb::Dimension>{}, {pb::DIMENSION_TOPIC}, {pb::DIMENSION_PERSON}}) {
    pb::CountEventsRequest request;
    *request.mutable_filter() = wide;
    for (pb::Dimension d : by) request.add_group_by(d);
    pb::CountEventsResponse response;
    grpc::Status status = Count(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.total(), static_cast<int64_t>(expected.size()));
  }
  pb::ExportEventsRequest export_request;
  *export_request.mutable_filter() = wide;
  std::string csv;
  grpc::Status status = Export(export_request, &csv);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(ParseCsv(csv).size(), expected.size() + 1);

  // 60 doors (one ordered arm each) beside 1000 panels and 1000 ous: every
  // arm repeating the others' lists passed SQLite's limit on variables.
  pb::EventFilter many;
  for (int door = 1; door <= 60; ++door) many.add_door_ids(door);
  for (int i = 0; i < 1000; ++i) {
    many.add_panel_ids(i < 3 ? absl::StrCat("p", i + 1) : absl::StrCat("panel-", i));
    many.add_ou_ids(i < 1 ? "ou1" : absl::StrCat("ou-", i));
  }
  const std::vector<int64_t> many_expected = ExpectedSequences(rows_, many, false);
  ASSERT_GT(many_expected.size(), 100u);
  EXPECT_EQ(ListAll(many, false, 1000), many_expected);
  pb::CountEventsRequest count;
  *count.mutable_filter() = many;
  count.add_group_by(pb::DIMENSION_DOOR);
  pb::CountEventsResponse counted;
  status = Count(count, &counted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(counted.total(), static_cast<int64_t>(many_expected.size()));
}

// Bounded work per request (issue 13, items 4 and 5): each test runs its own
// server with the limits under test, over an archive stored directly
// (merged, as a server finds it after a restart).
class QueryLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-query-limits");
    path_ = (dir_ / "archive.db").string();
    auto sqlite_store = store::SqliteStore::Open(path_);
    ASSERT_TRUE(sqlite_store.ok()) << sqlite_store.status();
    store_ = *std::move(sqlite_store);
  }

  void TearDown() override {
    StopServer();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Stores `rows` in large batches and merges them; call before StartServer.
  std::vector<EventRow> Bulk(std::vector<EventRow> rows) {
    constexpr size_t kBatch = 5000;
    for (size_t i = 0; i < rows.size(); i += kBatch) {
      std::span<EventRow> part =
          std::span<EventRow>(rows).subspan(i, std::min(kBatch, rows.size() - i));
      auto results = store_->AppendBatch(part);
      EXPECT_TRUE(results.ok()) << results.status();
      if (!results.ok()) return rows;
      for (size_t k = 0; k < part.size(); ++k) part[k].sequence = (*results)[k].sequence;
    }
    EXPECT_TRUE(store_->Merge());
    return rows;
  }

  void StartServer(const GrpcServerOptions& options = {},
                   std::optional<store::EventReaderOptions> reader_options = std::nullopt) {
    writer_ = std::make_unique<store::GroupCommitWriter>(*store_, feed_);
    store::EventReaderOptions reader_setup;
    reader_setup.max_connections = options.service.reader_connections();
    auto reader = store::EventReader::Open(path_, reader_options.value_or(reader_setup));
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
    auto server = GrpcServer::Start("127.0.0.1:0", *reader_, feed_, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    // The client takes replies of any size: the limits under test are the
    // server's.
    grpc::ChannelArguments arguments;
    arguments.SetMaxReceiveMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                         grpc::InsecureChannelCredentials(), arguments);
    stub_ = pb::EventArchive::NewStub(channel_);
  }

  void StopServer() {
    if (server_) server_->Shutdown();
    server_.reset();
    if (writer_) writer_->Stop();
    writer_.reset();
    reader_.reset();
  }

  // Enough ManyGroupRows that a count by every dimension takes a while.
  static constexpr int kHeavyRows = 50000;

  // Rows that make counts by every dimension expensive: many people, doors
  // and hours.
  static std::vector<EventRow> ManyGroupRows(int count) {
    std::mt19937 rng(1234);
    std::vector<EventRow> rows;
    rows.reserve(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
      EventRow row;
      row.topic = Topics()[rng() % Topics().size()];
      row.family = FamilyOf(row.topic);
      row.panel_id = absl::StrCat("panel-", rng() % 50);
      row.ou_id = "ou1";
      row.door_id = static_cast<int64_t>(rng() % 500);
      row.person_id = static_cast<int64_t>(rng() % 50000);
      row.door_name = absl::StrCat("Door ", *row.door_id);
      row.actor_user_id = "user";
      row.event_id = absl::StrCat("heavy-", i);
      row.occur_time_ms = kBaseMs + static_cast<int64_t>(rng() % (365 * kDayMs));
      row.receive_time_ms = row.occur_time_ms;
      row.subscription = "default";
      row.dedupe_key = DedupeKey(5000000 + i);
      row.raw = absl::StrCat("{\"n\":", i, "}");
      rows.push_back(std::move(row));
    }
    return rows;
  }

  // CountEvents grouped by all six dimensions: a heavy query.
  static pb::CountEventsRequest EverythingCount() {
    pb::CountEventsRequest request;
    for (pb::Dimension d : {pb::DIMENSION_TOPIC, pb::DIMENSION_PANEL, pb::DIMENSION_DOOR,
                            pb::DIMENSION_PERSON, pb::DIMENSION_HOUR, pb::DIMENSION_DAY}) {
      request.add_group_by(d);
    }
    return request;
  }

  // Runs `request` with an optional deadline; returns the status and how long
  // the answer took.
  std::pair<grpc::Status, std::chrono::milliseconds> TimedCount(
      const pb::CountEventsRequest& request,
      std::optional<std::chrono::milliseconds> deadline = std::nullopt) {
    grpc::ClientContext context;
    if (deadline) context.set_deadline(std::chrono::system_clock::now() + *deadline);
    pb::CountEventsResponse response;
    const auto start = std::chrono::steady_clock::now();
    grpc::Status status = stub_->CountEvents(&context, request, &response);
    return {status, std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)};
  }

  std::filesystem::path dir_;
  std::string path_;
  store::LocalCommitFeed feed_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<store::GroupCommitWriter> writer_;
  std::unique_ptr<store::EventReader> reader_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::EventArchive::Stub> stub_;
};

TEST_F(QueryLimitsTest, CountsPastTheGroupLimitAreRefusedNamingIt) {
  Bulk(MakeRows(kRowCount, 0, 42));
  GrpcServerOptions options;
  options.service.max_count_groups = 50;
  StartServer(options);

  pb::CountEventsRequest many;
  many.add_group_by(pb::DIMENSION_PERSON);
  many.add_group_by(pb::DIMENSION_HOUR);
  auto [status, took] = TimedCount(many);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("more than 50 groups"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("--max-count-groups=50"), std::string::npos);
  EXPECT_NE(status.error_message().find("narrow the filter"), std::string::npos);

  // Through the rollups too (door x day is summed outside SQL).
  pb::CountEventsRequest door_day;
  door_day.add_group_by(pb::DIMENSION_DOOR);
  door_day.add_group_by(pb::DIMENSION_DAY);
  EXPECT_EQ(TimedCount(door_day).first.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // At or under the limit: answered.
  pb::CountEventsRequest topics;
  topics.add_group_by(pb::DIMENSION_TOPIC);
  pb::CountEventsResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->CountEvents(&context, topics, &response).ok());
  EXPECT_EQ(response.groups_size(), static_cast<int>(Topics().size()));
  EXPECT_EQ(response.total(), kRowCount);
}

// A count that would run long is interrupted at the server's --query-timeout,
// and at the client's deadline: its connection and its turn are free again
// at once, not when the count would have finished.
TEST_F(QueryLimitsTest, AQueryPastItsDeadlineIsInterrupted) {
  Bulk(ManyGroupRows(kHeavyRows));
  GrpcServerOptions options;
  options.service.max_count_groups = 1000000;
  options.service.max_heavy_queries = 1;
  StartServer(options);
  const pb::CountEventsRequest heavy = EverythingCount();
  auto [full_status, full] = TimedCount(heavy);
  ASSERT_TRUE(full_status.ok()) << full_status.error_message();
  ASSERT_GT(full, std::chrono::milliseconds(250)) << "the archive is too small to test this";

  // The client gives up early; the server stops too, so the next count (on
  // the one heavy thread) does not wait for the first to finish.
  auto [cut_status, cut] = TimedCount(heavy, full / 8);
  EXPECT_EQ(cut_status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  pb::CountEventsRequest cheap;
  cheap.add_group_by(pb::DIMENSION_TOPIC);
  auto [cheap_status, cheap_took] = TimedCount(cheap);
  EXPECT_TRUE(cheap_status.ok()) << cheap_status.error_message();
  EXPECT_LT(cheap_took, full / 2) << "the abandoned count ran on (full count: "
                                  << full.count() << " ms)";

  // The server's own limit, whatever the client allows.
  StopServer();
  options.service.query_timeout = full / 8;
  StartServer(options);
  auto [status, took] = TimedCount(heavy, std::chrono::seconds(60));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_NE(status.error_message().find("--query-timeout="), std::string::npos)
      << status.error_message();
  EXPECT_LT(took, full / 2);
}

// Cheap lookups never queue behind expensive scans: while heavy counts and
// unindexed lists keep every heavy and list thread busy (and more wait),
// GetEvent answers promptly.
TEST_F(QueryLimitsTest, GetEventAnswersPromptlyWhileHeavyQueriesRun) {
  const std::vector<EventRow> rows = Bulk(ManyGroupRows(kHeavyRows));
  GrpcServerOptions options;
  options.service.max_count_groups = 1000000;
  StartServer(options);
  const pb::CountEventsRequest heavy = EverythingCount();
  auto [full_status, full] = TimedCount(heavy);
  ASSERT_TRUE(full_status.ok()) << full_status.error_message();
  ASSERT_GT(full, std::chrono::milliseconds(250)) << "the archive is too small to test this";

  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::thread> load;
  std::mutex mu;
  for (int i = 0; i < 10; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    grpc::ClientContext* context = contexts.back().get();
    context->set_deadline(std::chrono::system_clock::now() + 4 * full);
    load.emplace_back([this, context, i, &heavy] {
      if (i % 3 == 2) {  // an unindexed filter: every event is read
        pb::ListEventsRequest request;
        request.mutable_filter()->add_ou_ids("no-such-ou");
        pb::ListEventsResponse response;
        stub_->ListEvents(context, request, &response);
      } else {
        pb::CountEventsResponse response;
        stub_->CountEvents(context, heavy, &response);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::chrono::milliseconds slowest{0};
  for (int i = 0; i < 20; ++i) {
    pb::GetEventRequest request;
    request.set_sequence(rows[static_cast<size_t>(i) * 997].sequence);
    pb::Event event;
    grpc::ClientContext context;
    const auto start = std::chrono::steady_clock::now();
    grpc::Status status = stub_->GetEvent(&context, request, &event);
    slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - start));
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(event.event_id(), rows[static_cast<size_t>(i) * 997].event_id);
    std::this_thread::sleep_for(full / 40);
  }
  EXPECT_LT(slowest, std::max(std::chrono::milliseconds(250), full / 4))
      << "full count: " << full.count() << " ms";
  for (auto& context : contexts) context->TryCancel();
  for (std::thread& t : load) t.join();
}

// A page ends before the event that would take it past --max-page-bytes,
// keeps at least one event, and paging goes on from there.
TEST_F(QueryLimitsTest, ListEventsPagesAreBoundedInBytes) {
  std::vector<EventRow> rows = MakeRows(40, 0, 3);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i % 3 == 0) rows[i].raw = std::string(1 << 20, static_cast<char>('a' + i % 26));
  }
  rows = Bulk(std::move(rows));
  StartServer();  // the default budget, under gRPC's default 4 MiB

  pb::EventFilter all;
  std::vector<int64_t> seen;
  std::string token;
  int pages = 0;
  do {
    pb::ListEventsRequest request;
    request.set_page_size(1000);
    request.set_page_token(token);
    pb::ListEventsResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub_->ListEvents(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_GT(response.events_size(), 0);
    EXPECT_LE(response.ByteSizeLong(), size_t{3} << 20);
    for (const pb::Event& event : response.events()) seen.push_back(event.sequence());
    token = response.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 100);
  EXPECT_EQ(seen, ExpectedSequences(rows, all, false));
  EXPECT_GE(pages, 5);

  // One event larger than the budget still comes, alone, with a token.
  StopServer();
  GrpcServerOptions options;
  options.service.max_page_bytes = 64 * 1024;
  StartServer(options);
  seen.clear();
  token.clear();
  pages = 0;
  int single_big_pages = 0;
  do {
    pb::ListEventsRequest request;
    request.set_page_size(1000);
    request.set_descending(true);
    request.set_page_token(token);
    pb::ListEventsResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ListEvents(&context, request, &response).ok());
    ASSERT_GT(response.events_size(), 0);
    if (response.ByteSizeLong() > 64 * 1024) {
      EXPECT_EQ(response.events_size(), 1);
      ++single_big_pages;
    }
    for (const pb::Event& event : response.events()) seen.push_back(event.sequence());
    token = response.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 100);
  EXPECT_EQ(seen, ExpectedSequences(rows, all, true));
  EXPECT_EQ(single_big_pages, 14);
}

// A watcher that stops reading is ended once what waits for it passes
// --watch-buffer-bytes, saying so and where to resume; the server does not
// keep buffering for it.
TEST_F(QueryLimitsTest, ASlowWatcherIsDroppedOnceItsBufferIsFull) {
  testing::UseOneMallocArena();
  const std::vector<EventRow> first = Bulk(MakeRows(10, 0, 3));
  GrpcServerOptions options;
  options.service.watch_buffer_bytes = 1 << 20;
  StartServer(options);

  pb::WatchEventsRequest request;
  request.set_after_sequence(first.back().sequence);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(8));
  auto stream = stub_->WatchEvents(&context, request);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  // 64 MiB of events while the client reads nothing: far more than gRPC's
  // flow-control windows hold. The server keeps at most about its buffer.
  const size_t heap_before = testing::HeapBytesInUse();
  for (int batch = 0; batch < 16; ++batch) {
    std::vector<EventRow> rows = MakeRows(16, 1000 + batch * 16, static_cast<uint32_t>(batch));
    for (EventRow& row : rows) row.raw = std::string(256 * 1024, 'w');
    AppendThrough(*writer_, std::move(rows));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const size_t heap_after = testing::HeapBytesInUse();
  EXPECT_LT(heap_after, heap_before + (16 << 20))
      << "heap grew by " << (heap_after - heap_before) / 1024 << " KiB";
  int received = 0;
  int64_t last = 0;
  pb::Event event;
  while (stream->Read(&event)) {
    EXPECT_GT(event.sequence(), last);
    last = event.sequence();
    ++received;
  }
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_NE(status.error_message().find("watcher fell behind"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("--watch-buffer-bytes"), std::string::npos);
  EXPECT_NE(status.error_message().find(absl::StrCat("(", last, ")")), std::string::npos)
      << "names the last sequence sent, " << last;
  EXPECT_LT(received, 256);
}

// A request larger than --grpc-max-request-bytes is refused before it is
// parsed.
TEST_F(QueryLimitsTest, OversizedRequestsAreRefused) {
  Bulk(MakeRows(100, 0, 3));
  StartServer();
  pb::ListEventsRequest request;
  for (int i = 0; i < 1000; ++i) {
    request.mutable_filter()->add_panel_ids(absl::StrCat(i, std::string(4000, 'p')));
  }
  ASSERT_GT(request.ByteSizeLong(), size_t{3} << 20);
  pb::ListEventsResponse response;
  grpc::ClientContext context;
  grpc::Status status = stub_->ListEvents(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();

  // A filter at every field's value limit, with ordinary values, is well
  // under it.
  pb::ListEventsRequest wide;
  for (int i = 0; i < 1000; ++i) {
    pb::EventFilter& f = *wide.mutable_filter();
    f.add_topics(absl::StrCat("door.request.kind", i));
    f.add_panel_ids(absl::StrCat("0f4e6c2a-1b3d-4e5f-8a9b-", 100000000000 + i));
    f.add_door_ids(i);
    f.add_person_ids(i);
    f.add_ou_ids(absl::StrCat("ou-", i));
  }
  grpc::ClientContext wide_context;
  grpc::Status wide_status = stub_->ListEvents(&wide_context, wide, &response);
  EXPECT_TRUE(wide_status.ok()) << wide_status.error_message();
}

// The reader keeps a bounded amount of names in memory, however many large
// door names it reads, and reads them again after evicting them.
TEST_F(QueryLimitsTest, TheNameCacheStaysBounded) {
  testing::UseOneMallocArena();
  std::vector<EventRow> rows = MakeRows(48, 0, 3);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].door_id = static_cast<int64_t>(i);
    rows[i].door_name = std::string(1 << 20, static_cast<char>('A' + i % 26)) +
                        absl::StrCat(i);  // 48 distinct names of 1 MiB
  }
  rows = Bulk(std::move(rows));
  GrpcServerOptions options;
  store::EventReaderOptions reader_options;
  reader_options.max_connections = options.service.reader_connections();
  reader_options.name_cache_bytes = 2 << 20;
  StartServer(options, reader_options);

  auto list_all = [&](std::optional<int64_t> door = std::nullopt) {
    std::map<int64_t, std::string> names;
    std::string token;
    for (int pages = 0; pages < 100; ++pages) {
      pb::ListEventsRequest request;
      if (door) request.mutable_filter()->add_door_ids(*door);
      request.set_page_size(1000);
      request.set_page_token(token);
      pb::ListEventsResponse response;
      grpc::ClientContext context;
      EXPECT_TRUE(stub_->ListEvents(&context, request, &response).ok());
      for (const pb::Event& event : response.events()) {
        names[event.door_id()] = event.door_name().substr(1 << 20);
        EXPECT_EQ(event.door_name().size(), (1u << 20) + std::to_string(event.door_id()).size());
      }
      token = response.next_page_token();
      if (token.empty()) break;
    }
    return names;
  };
  list_all(0);  // warm up what the server and client keep, with one name
  const size_t before = testing::HeapBytesInUse();
  const std::map<int64_t, std::string> names = list_all();
  const std::map<int64_t, std::string> again = list_all();
  const size_t after = testing::HeapBytesInUse();
  ASSERT_EQ(names.size(), rows.size());
  for (const auto& [door, suffix] : names) EXPECT_EQ(suffix, std::to_string(door));
  EXPECT_EQ(again, names);
  EXPECT_LT(after, before + (16 << 20)) << "heap grew by " << (after - before) / 1024 << " KiB";
}


// A pattern that matches hundreds of stored topics (PDK adds topics; unknown
// ones are kept) is answered whole by every call.
TEST_F(QueryLimitsTest, APatternMatchingHundredsOfStoredTopicsWorks) {
  std::vector<EventRow> rows = MakeRows(1500, 0, 11);
  for (size_t i = 0; i < rows.size(); i += 2) {
    rows[i].topic = absl::StrCat("zz.kind", i / 2);  // 750 topics
    rows[i].family = "unknown";
  }
  rows = Bulk(std::move(rows));
  StartServer();
  pb::EventFilter filter;
  filter.add_topics("zz.*");
  filter.add_topics("door.forced");
  const std::vector<int64_t> expected = ExpectedSequences(rows, filter, false);
  ASSERT_GT(expected.size(), 750u);

  std::vector<int64_t> listed;
  std::string token;
  do {
    pb::ListEventsRequest request;
    *request.mutable_filter() = filter;
    request.set_page_size(1000);
    request.set_page_token(token);
    pb::ListEventsResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub_->ListEvents(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    for (const pb::Event& event : response.events()) listed.push_back(event.sequence());
    token = response.next_page_token();
  } while (!token.empty());
  EXPECT_EQ(listed, expected);

  pb::CountEventsRequest count;
  *count.mutable_filter() = filter;
  count.add_group_by(pb::DIMENSION_DAY);
  pb::CountEventsResponse counted;
  grpc::ClientContext count_context;
  grpc::Status status = stub_->CountEvents(&count_context, count, &counted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(counted.total(), static_cast<int64_t>(expected.size()));

  pb::WatchEventsRequest watch;
  *watch.mutable_filter() = filter;
  grpc::ClientContext watch_context;
  watch_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto stream = stub_->WatchEvents(&watch_context, watch);
  std::vector<int64_t> watched;
  pb::Event event;
  while (watched.size() < expected.size() && stream->Read(&event)) {
    watched.push_back(event.sequence());
  }
  watch_context.TryCancel();
  while (stream->Read(&event)) {
  }
  stream->Finish();
  std::vector<int64_t> by_sequence = expected;
  std::sort(by_sequence.begin(), by_sequence.end());
  EXPECT_EQ(watched, by_sequence);
}

// The `serve` flags reach the service: the real binary, as a user starts it.
TEST_F(QueryLimitsTest, ServeFlagsSetTheQueryLimits) {
  Bulk(MakeRows(300, 0, 3));
  store_.reset();  // the server process is the archive's one writer
  auto server = testing::ServerProcess::Start(
      path_, {"--max-count-groups", "3", "--grpc-max-request-bytes", "2000",
              "--max-page-bytes", "1000", "--query-timeout", "20s"});
  ASSERT_TRUE(server.ok()) << server.status();
  {
    auto stub = pb::EventArchive::NewStub(
        grpc::CreateChannel(server->grpc_address(), grpc::InsecureChannelCredentials()));
    pb::CountEventsRequest count;
    count.add_group_by(pb::DIMENSION_TOPIC);
    pb::CountEventsResponse counted;
    grpc::ClientContext count_context;
    grpc::Status status = stub->CountEvents(&count_context, count, &counted);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(status.error_message().find("--max-count-groups=3"), std::string::npos)
        << status.error_message();

    pb::ListEventsRequest big;
    for (int i = 0; i < 100; ++i) big.mutable_filter()->add_ou_ids(std::string(30, 'o'));
    pb::ListEventsResponse listed;
    grpc::ClientContext big_context;
    EXPECT_EQ(stub->ListEvents(&big_context, big, &listed).error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);

    pb::ListEventsRequest page;
    page.set_page_size(100);
    grpc::ClientContext page_context;
    ASSERT_TRUE(stub->ListEvents(&page_context, page, &listed).ok());
    EXPECT_GE(listed.events_size(), 1);
    EXPECT_LT(listed.events_size(), 20);
    EXPECT_FALSE(listed.next_page_token().empty());
  }  // the channel closes: an open connection holds up the server's exit
  EXPECT_EQ(server->Stop(SIGTERM).value_or(-1), 0);
}

}  // namespace
}  // namespace pdkarchive::query
