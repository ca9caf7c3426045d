// The EventArchive gRPC service end to end: a real archive of each engine (a
// SQLite file in a temp dir, a database on the test PostgreSQL cluster)
// written through the group-commit writer, a real gRPC server on 127.0.0.1:0,
// and expectations computed independently in the test.
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
#include "store/archive.h"
#include "tests/query_support.h"
#include "tests/test_support/heap.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"
#include "timeutil/time_util.h"

namespace pdkarchive::query {
namespace {


// The query behaviour suite, run against each storage engine: the archive is
// opened through store::OpenArchive and read through its ArchiveReader, as
// serve does.
class QueryTest : public ::testing::TestWithParam<testing::Engine> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-query");
    auto location = testing::TestArchive::Create(GetParam(), dir_);
    ASSERT_TRUE(location.ok()) << location.status();
    location_ = *std::move(location);
    auto archive = store::OpenArchive(location_->db());
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_ = *std::move(archive);
    writer_ = std::make_unique<store::GroupCommitWriter>(archive_->sink(), archive_->feed());
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

    auto reader = archive_->OpenReader(store::EventReaderOptions{});
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
    auto server = GrpcServer::Start("127.0.0.1:0", *reader_, archive_->feed());
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
    archive_.reset();
    location_.reset();
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
  std::unique_ptr<testing::TestArchive> location_;
  std::unique_ptr<store::Archive> archive_;
  std::unique_ptr<store::GroupCommitWriter> writer_;
  std::unique_ptr<store::ArchiveReader> reader_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::EventArchive::Stub> stub_;
  std::vector<EventRow> rows_;
  int64_t special_sequence_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Engines, QueryTest, ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

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

TEST_P(QueryTest, ListEventsReturnsExactlyTheMatchingEventsInOrder) {
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

TEST_P(QueryTest, ListEventsSmallPagesSeeEveryEventOnceWhileEventsArrive) {
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

TEST_P(QueryTest, ListEventsPageSizeDefaultsAndCaps) {
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

TEST_P(QueryTest, ListEventsRejectsForgedAndMismatchedTokens) {
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

TEST_P(QueryTest, GetEventReturnsTheStoredRow) {
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

TEST_P(QueryTest, InvalidFiltersAreRejectedNamingTheField) {
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

TEST_P(QueryTest, CountEventsMatchesIndependentCounts) {
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

TEST_P(QueryTest, CountEventsRejectsBadGroupBy) {
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
  for (const std::string* text : {&row.device_id, &row.holder_id, &row.holder_name,
                                  &row.cloud_node_id, &row.system_id}) {
    record.push_back(Guarded(*text));
  }
  return record;
}

TEST_P(QueryTest, ExportEventsIsRfc4180CsvOfTheMatchingRows) {
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
      for (const char* column :
           {"device_id", "holder_id", "holder_name", "cloud_node_id", "system_id"}) {
        header.push_back(column);
      }
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

TEST_P(QueryTest, ExportEventsGuardsAgainstFormulaInjection) {
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
      "\"=raw stays, \"\"as is\"\"\",,,,,\r\n");
  EXPECT_NE(text.find(expected_line), std::string::npos) << text;
  std::vector<std::vector<std::string>> records = ParseCsv(text);
  bool found = false;
  for (const auto& record : records) {
    if (record[0] == std::to_string(special_sequence_)) {
      found = true;
      EXPECT_EQ(record[7], "'=HYPERLINK(\"x\")");
      EXPECT_EQ(record[13], "=raw stays, \"as is\"");
    }
  }
  EXPECT_TRUE(found);
}

TEST_P(QueryTest, WatchEventsPushesMatchingCommitsPromptly) {
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

TEST_P(QueryTest, WatchEventsSendsTheBacklogThenLiveEventsInSequenceOrder) {
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

TEST_P(QueryTest, WatchEventsEndPromptlyOnServerShutdown) {
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

TEST_P(QueryTest, ManyConcurrentReadersWhileWriting) {
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

TEST_P(QueryTest, CancelledExportsAndWatchesEndCleanly) {
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

TEST_P(QueryTest, HealthCheckingAndReflectionAreOn) {
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
TEST_P(QueryTest, ScanEachVisitsWhatListReadsAndResumes) {
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
// for events whose door is that number, and no event here has it.
TEST_P(QueryTest, TheNoDoorSentinelMatchesNothing) {
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
TEST_P(QueryTest, FiltersWithHundredsOfValuesPerFieldWork) {
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
// The query limits, run against each storage engine.
class QueryLimitsTest : public ::testing::TestWithParam<testing::Engine> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-query-limits");
    auto location = testing::TestArchive::Create(GetParam(), dir_);
    ASSERT_TRUE(location.ok()) << location.status();
    location_ = *std::move(location);
    auto archive = store::OpenArchive(location_->db());
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_ = *std::move(archive);
  }

  void TearDown() override {
    StopServer();
    archive_.reset();
    location_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Stores `rows` in large batches and merges them; call before StartServer.
  std::vector<EventRow> Bulk(std::vector<EventRow> rows) {
    constexpr size_t kBatch = 5000;
    for (size_t i = 0; i < rows.size(); i += kBatch) {
      std::span<EventRow> part =
          std::span<EventRow>(rows).subspan(i, std::min(kBatch, rows.size() - i));
      auto results = archive_->sink().AppendBatch(part);
      EXPECT_TRUE(results.ok()) << results.status();
      if (!results.ok()) return rows;
      for (size_t k = 0; k < part.size(); ++k) part[k].sequence = (*results)[k].sequence;
    }
    // Whatever the engine defers (SQLite's indexing of the newest rows) is
    // done before the test reads.
    for (int i = 0; i < 1000 && archive_->sink().HasIdleWork(); ++i) {
      archive_->sink().Maintain(store::BatchSink::Load::kIdle);
    }
    EXPECT_FALSE(archive_->sink().HasIdleWork());
    return rows;
  }

  void StartServer(const GrpcServerOptions& options = {},
                   std::optional<store::EventReaderOptions> reader_options = std::nullopt) {
    writer_ = std::make_unique<store::GroupCommitWriter>(archive_->sink(), archive_->feed());
    store::EventReaderOptions reader_setup;
    reader_setup.max_connections = options.service.reader_connections();
    auto reader = archive_->OpenReader(reader_options.value_or(reader_setup));
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
    auto server = GrpcServer::Start("127.0.0.1:0", *reader_, archive_->feed(), options);
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

  // Enough ManyGroupRows that a count by every dimension takes a while
  // (well over 250 ms on this kind of machine): PostgreSQL's hash
  // aggregation is quick enough to need twice SQLite's.
  int HeavyRows() const { return GetParam() == testing::Engine::kPostgres ? 100000 : 50000; }

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
  std::unique_ptr<testing::TestArchive> location_;
  std::unique_ptr<store::Archive> archive_;
  std::unique_ptr<store::GroupCommitWriter> writer_;
  std::unique_ptr<store::ArchiveReader> reader_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::EventArchive::Stub> stub_;
};

INSTANTIATE_TEST_SUITE_P(Engines, QueryLimitsTest, ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

TEST_P(QueryLimitsTest, CountsPastTheGroupLimitAreRefusedNamingIt) {
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
TEST_P(QueryLimitsTest, AQueryPastItsDeadlineIsInterrupted) {
  Bulk(ManyGroupRows(HeavyRows()));
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
TEST_P(QueryLimitsTest, GetEventAnswersPromptlyWhileHeavyQueriesRun) {
  const std::vector<EventRow> rows = Bulk(ManyGroupRows(HeavyRows()));
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
TEST_P(QueryLimitsTest, ListEventsPagesAreBoundedInBytes) {
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
TEST_P(QueryLimitsTest, ASlowWatcherIsDroppedOnceItsBufferIsFull) {
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
TEST_P(QueryLimitsTest, OversizedRequestsAreRefused) {
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
TEST_P(QueryLimitsTest, TheNameCacheStaysBounded) {
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
TEST_P(QueryLimitsTest, APatternMatchingHundredsOfStoredTopicsWorks) {
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
TEST_P(QueryLimitsTest, ServeFlagsSetTheQueryLimits) {
  Bulk(MakeRows(300, 0, 3));
  archive_.reset();  // the server process is the archive's one writer
  auto server = testing::ServerProcess::Start(
      location_->db(), {"--max-count-groups", "3", "--grpc-max-request-bytes", "2000",
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
