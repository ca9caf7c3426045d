// PDK API 2.0's text ids (store/event.h's device_id, holder_id, holder_name,
// cloud_node_id, system_id) through the real query service on each engine:
// rows written through the group-commit writer, read back by Get, List,
// Watch and Export, filtered by device and holder ids alone and OR-ed with
// door and person numbers, paged, and counted by door and person over
// ranges the rollups serve, before and after the engine indexes them.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "query/grpc_server.h"
#include "store/archive.h"
#include "store/group_commit_writer.h"
#include "tests/query_support.h"
#include "tests/test_support/archive_rows.h"
#include "tests/test_support/server_process.h"
#include "tests/test_support/test_archive.h"
#include "tests/test_support/test_dir.h"

namespace pdkarchive::query {
namespace {

constexpr char kDeviceA[] = "3f2c1b9e-8d7a-4c6b-9e5f-0a1b2c3d4e5f";
constexpr char kDeviceB[] = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
constexpr char kHolderX[] = "c0ffee00-1234-4abc-8def-001122334455";
constexpr char kHolderY[] = "dec0de00-4321-4cba-9fed-554433221100";

// A 1.0 row (door and person numbers) or a 2.0 row (device and holder
// ids), `n` spread over three days.
EventRow MakeRow(int n, bool v2) {
  EventRow row;
  row.event_id = absl::StrCat("evt-", n);
  row.topic = v2 ? "accessEvent.granted" : "door.request.allowed";
  row.family = v2 ? "system" : "panel";
  row.panel_id = v2 ? "node-serial-1" : "panel-1";
  row.ou_id = "ou";
  row.occur_time_ms = kBaseMs + (n % 3) * kDayMs + n * 60000;
  row.receive_time_ms = row.occur_time_ms + 10;
  row.subscription = "default";
  row.dedupe_key = DedupeKey(n);
  row.raw = absl::StrCat("{\"n\":", n, "}");
  if (v2) {
    row.device_id = n % 2 == 0 ? kDeviceA : kDeviceB;
    row.holder_id = n % 3 == 0 ? kHolderX : kHolderY;
    row.holder_name = n % 3 == 0 ? "Ann Example" : "Bo Sample";
    row.cloud_node_id = "7e57ab1e-0000-4000-8000-000000000001";
    row.system_id = "5y5-0001";
    row.door_name = "Lobby";
    // A few name their door by number too: the device id is still the key.
    if (n % 7 == 0) row.door_id = 2;
  } else {
    row.door_id = 1 + n % 2;
    row.person_id = 10 + n % 3;
    row.door_name = "Front";
  }
  return row;
}

void ExpectSameEvent(const pb::Event& event, const EventRow& row) {
  EXPECT_EQ(event.sequence(), row.sequence);
  EXPECT_EQ(event.device_id(), row.device_id);
  EXPECT_EQ(event.holder_id(), row.holder_id);
  EXPECT_EQ(event.holder_name(), row.holder_name);
  EXPECT_EQ(event.cloud_node_id(), row.cloud_node_id);
  EXPECT_EQ(event.system_id(), row.system_id);
  EXPECT_EQ(event.has_door_id(), row.door_id.has_value());
  EXPECT_EQ(event.has_person_id(), row.person_id.has_value());
  EXPECT_EQ(event.raw(), row.raw);
}

// The door (person) key of a count, as the contract has it: a 2.0 row's
// device (holder) id, else the number, else "".
std::string DoorKey(const EventRow& row) {
  if (!row.device_id.empty()) return row.device_id;
  return row.door_id ? std::to_string(*row.door_id) : "";
}
std::string PersonKey(const EventRow& row) {
  if (!row.holder_id.empty()) return row.holder_id;
  return row.person_id ? std::to_string(*row.person_id) : "";
}

class V2IdsTest : public ::testing::TestWithParam<testing::Engine> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir("pdkarchive-v2ids");
    auto location = testing::TestArchive::Create(GetParam(), dir_);
    ASSERT_TRUE(location.ok()) << location.status();
    location_ = *std::move(location);
    auto archive = store::OpenArchive(location_->db());
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_ = *std::move(archive);
    writer_ = std::make_unique<store::GroupCommitWriter>(archive_->sink(), archive_->feed());
    // Small batches (indexed at once) and a big one (SQLite defers it).
    std::vector<EventRow> all;
    for (int n = 0; n < 90; ++n) all.push_back(MakeRow(n, n % 2 == 1 || n % 5 == 0));
    for (size_t i = 0; i < 30; i += 3) {
      for (const EventRow& row :
           Append(std::vector<EventRow>(all.begin() + static_cast<std::ptrdiff_t>(i),
                                        all.begin() + static_cast<std::ptrdiff_t>(i + 3)))) {
        rows_.push_back(row);
      }
    }
    for (const EventRow& row : Append(std::vector<EventRow>(all.begin() + 30, all.end()))) {
      rows_.push_back(row);
    }
    auto reader = archive_->OpenReader(store::EventReaderOptions{});
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
    auto server = GrpcServer::Start("127.0.0.1:0", *reader_, archive_->feed());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
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

  std::vector<EventRow> Append(std::vector<EventRow> rows) {
    return AppendThrough(*writer_, std::move(rows));
  }

  // Indexes whatever the engine deferred, as an idle writer does.
  void IndexEverything() {
    writer_->Stop();
    archive_->sink().Maintain(store::BatchSink::Load::kIdle);
    writer_ = std::make_unique<store::GroupCommitWriter>(archive_->sink(), archive_->feed());
  }

  const EventRow& Row(int64_t sequence) const {
    for (const EventRow& row : rows_) {
      if (row.sequence == sequence) return row;
    }
    static const EventRow* none = new EventRow();
    ADD_FAILURE() << "no row " << sequence;
    return *none;
  }

  // Every page of `filter`; the events in order.
  std::vector<pb::Event> ListAll(const pb::EventFilter& filter, bool descending, int page_size,
                                 int* pages_out = nullptr) {
    std::vector<pb::Event> out;
    std::string token;
    int pages = 0;
    for (; pages < 1000; ++pages) {
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
      for (const pb::Event& event : response.events()) out.push_back(event);
      token = response.next_page_token();
      if (token.empty()) break;
    }
    if (pages_out != nullptr) *pages_out = pages + 1;
    return out;
  }

  std::map<std::vector<std::string>, int64_t> Count(const pb::EventFilter& filter,
                                                    std::vector<pb::Dimension> group_by) {
    pb::CountEventsRequest request;
    *request.mutable_filter() = filter;
    for (pb::Dimension d : group_by) request.add_group_by(d);
    pb::CountEventsResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub_->CountEvents(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::map<std::vector<std::string>, int64_t> out;
    for (const pb::Group& group : response.groups()) {
      out[std::vector<std::string>(group.key().begin(), group.key().end())] += group.count();
    }
    return out;
  }

  // Closes the in-process service and archive, leaving it to a process.
  void CloseArchive() {
    if (server_) server_->Shutdown();
    server_.reset();
    if (writer_) writer_->Stop();
    writer_.reset();
    reader_.reset();
    archive_.reset();
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
};

TEST_P(V2IdsTest, GetAndListReturnAllFiveFields) {
  for (bool indexed : {false, true}) {
    SCOPED_TRACE(indexed ? "indexed" : "as appended");
    if (indexed) IndexEverything();
    for (const EventRow& row : rows_) {
      pb::GetEventRequest request;
      request.set_sequence(row.sequence);
      pb::Event event;
      grpc::ClientContext context;
      ASSERT_TRUE(stub_->GetEvent(&context, request, &event).ok());
      ExpectSameEvent(event, row);
    }
    std::vector<pb::Event> listed = ListAll(pb::EventFilter(), false, 1000);
    ASSERT_EQ(listed.size(), rows_.size());
    for (const pb::Event& event : listed) ExpectSameEvent(event, Row(event.sequence()));
  }
}

TEST_P(V2IdsTest, ListFiltersByDeviceAndHolderOredWithNumbers) {
  std::vector<pb::EventFilter> filters(8);
  filters[0].add_device_ids(kDeviceA);
  filters[1].add_device_ids(kDeviceA);
  filters[1].add_door_ids(1);  // OR: device A's rows and door 1's
  filters[2].add_holder_ids(kHolderX);
  filters[3].add_holder_ids(kHolderY);
  filters[3].add_person_ids(10);
  filters[4].add_device_ids(kDeviceA);
  filters[4].add_device_ids(kDeviceB);
  filters[4].add_holder_ids(kHolderX);  // AND across fields
  filters[5].add_device_ids("no-such-device");
  filters[6].add_device_ids(kDeviceB);
  filters[6].add_door_ids(1);
  filters[6].add_door_ids(2);
  SetMs(filters[6].mutable_start_time(), kBaseMs + kDayMs);
  filters[7].add_holder_ids(kHolderX);  // one merged arm per holder
  filters[7].add_holder_ids(kHolderY);
  filters[7].add_topics("accessEvent.*");
  for (bool indexed : {false, true}) {
    if (indexed) IndexEverything();
    for (size_t i = 0; i < filters.size(); ++i) {
      for (bool descending : {false, true}) {
        SCOPED_TRACE(absl::StrCat("filter ", i, indexed ? " indexed" : "",
                                  descending ? " descending" : ""));
        const std::vector<int64_t> expected = ExpectedSequences(rows_, filters[i], descending);
        if (i != 5) {
          EXPECT_FALSE(expected.empty());
        }
        int pages = 0;
        std::vector<pb::Event> got = ListAll(filters[i], descending, 4, &pages);
        std::vector<int64_t> sequences;
        for (const pb::Event& event : got) sequences.push_back(event.sequence());
        EXPECT_EQ(sequences, expected);
        if (expected.size() > 8) {
          EXPECT_GT(pages, 2);  // paged across several pages
        }
      }
    }
  }
}

TEST_P(V2IdsTest, PageTokensBindTheTextIdFilters) {
  pb::ListEventsRequest request;
  request.mutable_filter()->add_device_ids(kDeviceA);
  request.set_page_size(2);
  pb::ListEventsResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ListEvents(&context, request, &response).ok());
  }
  ASSERT_FALSE(response.next_page_token().empty());
  for (int other = 0; other < 3; ++other) {
    pb::ListEventsRequest next;
    next.set_page_size(2);
    next.set_page_token(response.next_page_token());
    if (other == 0) next.mutable_filter()->add_device_ids(kDeviceB);
    if (other == 1) next.mutable_filter()->add_holder_ids(kDeviceA);
    // other == 2: no device filter at all
    pb::ListEventsResponse ignored;
    grpc::ClientContext context;
    EXPECT_EQ(stub_->ListEvents(&context, next, &ignored).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << other;
  }
  pb::ListEventsRequest same = request;
  same.set_page_token(response.next_page_token());
  grpc::ClientContext context;
  EXPECT_TRUE(stub_->ListEvents(&context, same, &response).ok());
}

TEST_P(V2IdsTest, CountsKeyTwoPointZeroRowsByDeviceAndHolder) {
  // Whole days (the rollups' ranges), part of a day (the events'), and all.
  std::vector<pb::EventFilter> ranges(3);
  SetMs(ranges[0].mutable_start_time(), kBaseMs);
  SetMs(ranges[0].mutable_end_time(), kBaseMs + 2 * kDayMs);
  SetMs(ranges[1].mutable_start_time(), kBaseMs + kHourMs);
  SetMs(ranges[1].mutable_end_time(), kBaseMs + 3 * kDayMs);
  using D = std::vector<pb::Dimension>;
  const std::vector<D> groupings = {{pb::DIMENSION_DOOR},
                                    {pb::DIMENSION_PERSON},
                                    {pb::DIMENSION_DOOR, pb::DIMENSION_DAY},
                                    {pb::DIMENSION_PANEL, pb::DIMENSION_DOOR},
                                    {pb::DIMENSION_TOPIC},
                                    {}};
  for (bool indexed : {false, true}) {
    if (indexed) IndexEverything();
    for (size_t r = 0; r < ranges.size(); ++r) {
      for (int device_filter = 0; device_filter < 4; ++device_filter) {
        pb::EventFilter filter = ranges[r];
        if (device_filter == 1) filter.add_device_ids(kDeviceB);
        if (device_filter == 2) {
          filter.add_device_ids(kDeviceA);
          filter.add_door_ids(2);
        }
        if (device_filter == 3) filter.add_door_ids(2);  // the rollups still serve
        for (size_t g = 0; g < groupings.size(); ++g) {
          SCOPED_TRACE(absl::StrCat("range ", r, " device filter ", device_filter, " grouping ",
                                    g, indexed ? " indexed" : ""));
          std::map<std::vector<std::string>, int64_t> expected;
          for (const EventRow& row : rows_) {
            if (!Matches(row, filter)) continue;
            std::vector<std::string> key;
            for (pb::Dimension d : groupings[g]) {
              switch (d) {
                case pb::DIMENSION_DOOR:
                  key.push_back(DoorKey(row));
                  break;
                case pb::DIMENSION_PERSON:
                  key.push_back(PersonKey(row));
                  break;
                case pb::DIMENSION_DAY:
                  key.push_back(FormatUtc(row.occur_time_ms, "%Y-%m-%d"));
                  break;
                case pb::DIMENSION_PANEL:
                  key.push_back(row.panel_id);
                  break;
                default:
                  key.push_back(row.topic);
                  break;
              }
            }
            expected[key] += 1;
          }
          if (groupings[g].empty() && expected.empty()) expected[{}] = 0;
          EXPECT_EQ(Count(filter, groupings[g]), expected);
        }
      }
    }
  }
  // No 2.0 row is counted under "no door" or "no person".
  const auto by_door = Count(ranges[2], {pb::DIMENSION_DOOR});
  EXPECT_EQ(by_door.count({""}), 0u);
  EXPECT_GT(by_door.count({kDeviceA}), 0u);
  EXPECT_GT(by_door.count({"1"}), 0u);
  const auto by_person = Count(ranges[2], {pb::DIMENSION_PERSON});
  EXPECT_EQ(by_person.count({""}), 0u);
  EXPECT_GT(by_person.count({kHolderX}), 0u);
}

TEST_P(V2IdsTest, CountsHolderFilters) {
  pb::EventFilter filter;
  filter.add_holder_ids(kHolderX);
  filter.add_person_ids(11);
  int64_t expected = 0;
  for (const EventRow& row : rows_) expected += Matches(row, filter) ? 1 : 0;
  ASSERT_GT(expected, 0);
  std::map<std::vector<std::string>, int64_t> want = {{{}, expected}};
  EXPECT_EQ(Count(filter, {}), want);
}

TEST_P(V2IdsTest, ExportAppendsTheTextIdColumns) {
  pb::ExportEventsRequest request;
  request.mutable_filter()->add_device_ids(kDeviceA);
  request.mutable_filter()->add_door_ids(1);
  request.set_include_raw(true);
  grpc::ClientContext context;
  auto stream = stub_->ExportEvents(&context, request);
  std::string text;
  pb::ExportEventsResponse response;
  while (stream->Read(&response)) text += response.csv_chunk();
  ASSERT_TRUE(stream->Finish().ok());
  std::vector<std::vector<std::string>> records = ParseCsv(text);
  ASSERT_FALSE(records.empty());
  const std::vector<std::string> tail = {"raw",         "device_id",     "holder_id",
                                         "holder_name", "cloud_node_id", "system_id"};
  ASSERT_EQ(records[0].size(), 19u);
  EXPECT_EQ(records[0][12], "subscription");
  EXPECT_EQ(std::vector<std::string>(records[0].begin() + 13, records[0].end()), tail);
  const std::vector<int64_t> expected = ExpectedSequences(rows_, request.filter(), false);
  ASSERT_EQ(records.size(), expected.size() + 1);
  bool saw_v2 = false;
  bool saw_v1 = false;
  for (size_t i = 0; i < expected.size(); ++i) {
    const EventRow& row = Row(expected[i]);
    const std::vector<std::string>& record = records[i + 1];
    ASSERT_EQ(record.size(), 19u);
    EXPECT_EQ(record[0], std::to_string(row.sequence));
    EXPECT_EQ(record[13], row.raw);
    EXPECT_EQ(record[14], row.device_id);
    EXPECT_EQ(record[15], row.holder_id);
    EXPECT_EQ(record[16], row.holder_name);
    EXPECT_EQ(record[17], row.cloud_node_id);
    EXPECT_EQ(record[18], row.system_id);
    (row.device_id.empty() ? saw_v1 : saw_v2) = true;
  }
  EXPECT_TRUE(saw_v1);
  EXPECT_TRUE(saw_v2);
}

TEST_P(V2IdsTest, WatchDeliversTextIdsAndFiltersByDevice) {
  pb::WatchEventsRequest request;
  request.mutable_filter()->add_device_ids(kDeviceB);
  request.set_after_sequence(rows_[rows_.size() / 2].sequence);
  std::vector<int64_t> expected;
  for (const EventRow& row : rows_) {
    if (row.sequence > request.after_sequence() && Matches(row, request.filter())) {
      expected.push_back(row.sequence);
    }
  }
  ASSERT_FALSE(expected.empty());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub_->WatchEvents(&context, request);
  pb::Event event;
  std::vector<int64_t> got;
  while (got.size() < expected.size() && stream->Read(&event)) {
    ExpectSameEvent(event, Row(event.sequence()));
    got.push_back(event.sequence());
  }
  EXPECT_EQ(got, expected);
  // Live: a 1.0 row and a device A row do not match; a device B row does.
  std::vector<EventRow> live = {MakeRow(1000, false), MakeRow(1002, true), MakeRow(1001, true)};
  live = Append(live);
  ASSERT_EQ(live[2].device_id, kDeviceB);
  ASSERT_TRUE(stream->Read(&event));
  EXPECT_EQ(event.sequence(), live[2].sequence);
  ExpectSameEvent(event, live[2]);
  context.TryCancel();
  while (stream->Read(&event)) {
  }
  stream->Finish();
}

// `events`, `count` and `get` through the binary: --door and --person take a
// number or a 2.0 id, and the human-readable output shows the 2.0 ids.
TEST_P(V2IdsTest, CliDoorAndPersonTakeNumbersOrTextIds) {
  CloseArchive();
  auto server = testing::ServerProcess::Start(location_->db(), {});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string addr = server->grpc_address();
  auto lines_of = [](const std::string& out) {
    return std::vector<std::string>(absl::StrSplit(out, '\n', absl::SkipEmpty()));
  };
  auto expected_count = [&](const pb::EventFilter& filter) {
    size_t n = 0;
    for (const EventRow& row : rows_) {
      if (Matches(row, filter)) ++n;
    }
    return n;
  };
  pb::EventFilter device_a;
  device_a.add_device_ids(kDeviceA);
  auto json = testing::RunCli({"events", "--server", addr, "--door", kDeviceA, "--json",
                               "--limit", "1000"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  std::vector<std::string> lines = lines_of(json.out);
  ASSERT_EQ(lines.size(), expected_count(device_a)) << json.out;
  for (const std::string& line : lines) {
    EXPECT_TRUE(absl::StrContains(line, absl::StrCat("\"device_id\":\"", kDeviceA, "\"")))
        << line;
  }

  pb::EventFilter either;
  either.add_device_ids(kDeviceA);
  either.add_door_ids(1);
  either.add_holder_ids(kHolderX);
  either.add_person_ids(11);
  auto mixed = testing::RunCli({"events", "--server", addr, "--door", kDeviceA, "--door", "1",
                                "--person", kHolderX, "--person", "11", "--json", "--limit",
                                "1000"});
  ASSERT_EQ(mixed.exit_code, 0) << mixed.err;
  EXPECT_EQ(lines_of(mixed.out).size(), expected_count(either)) << mixed.out;
  ASSERT_GT(expected_count(either), 0u);

  auto table = testing::RunCli({"events", "--server", addr, "--door", kDeviceA, "--limit",
                                "1000"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(absl::StrContains(table.out, kDeviceA)) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, absl::StrCat(kHolderX, " (Ann Example)")))
      << table.out;

  auto count = testing::RunCli({"count", "--server", addr, "--by", "door"});
  ASSERT_EQ(count.exit_code, 0) << count.err;
  EXPECT_TRUE(absl::StrContains(count.out, kDeviceA)) << count.out;
  EXPECT_TRUE(absl::StrContains(count.out, kDeviceB)) << count.out;

  int64_t v2_sequence = 0;
  for (const EventRow& row : rows_) {
    if (!row.holder_name.empty()) v2_sequence = row.sequence;
  }
  auto get = testing::RunCli({"get", "--server", addr, absl::StrCat(v2_sequence)});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  const EventRow& row = Row(v2_sequence);
  for (const std::string& text : {row.device_id, row.holder_id, row.holder_name,
                                  row.cloud_node_id, row.system_id}) {
    EXPECT_TRUE(absl::StrContains(get.out, text)) << get.out;
  }
  EXPECT_EQ(server->Stop(SIGTERM).value_or(-1), 0);
}

// `pdk-archive copy` from this engine to the other and back keeps the 2.0
// ids of every row.
TEST_P(V2IdsTest, CopyToTheOtherEngineAndBackKeepsTheTextIds) {
  CloseArchive();
  const std::vector<EventRow> source = testing::ReadAllRows(location_->db());
  ASSERT_EQ(source.size(), rows_.size());
  const testing::Engine other = GetParam() == testing::Engine::kSqlite
                                    ? testing::Engine::kPostgres
                                    : testing::Engine::kSqlite;
  std::filesystem::create_directories(dir_ / "there");
  std::filesystem::create_directories(dir_ / "back");
  auto there = testing::TestArchive::Create(other, dir_ / "there");
  ASSERT_TRUE(there.ok()) << there.status();
  auto back = testing::TestArchive::Create(GetParam(), dir_ / "back");
  ASSERT_TRUE(back.ok()) << back.status();
  for (auto [from, to] : {std::pair{location_.get(), there->get()},
                          std::pair{there->get(), back->get()}}) {
    testing::CommandResult copied =
        testing::RunCli({"copy", "--from", from->db(), "--to", to->db(), "--batch", "7"});
    ASSERT_EQ(copied.exit_code, 0) << copied.err;
    EXPECT_EQ(testing::ReadAllRows(to->db()), source);
  }
  size_t with_ids = 0;
  for (const EventRow& row : testing::ReadAllRows((*back)->db())) {
    if (!row.device_id.empty()) ++with_ids;
  }
  EXPECT_GT(with_ids, 0u);
}

INSTANTIATE_TEST_SUITE_P(Engines, V2IdsTest, ::testing::ValuesIn(testing::AllEngines()),
                         ::testing::PrintToStringParamName());

}  // namespace
}  // namespace pdkarchive::query
