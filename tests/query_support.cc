// Shared by the gRPC query suites: rows to store, the filter semantics
// written out independently of the server, CSV parsing.
#include "tests/query_support.h"

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"

namespace pdkarchive::query {

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
                               int64_t base_ms) {
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
  // A number OR a 2.0 text id (device / holder) passes the condition.
  auto listed = [](const auto& values, const auto& value) {
    return std::find(values.begin(), values.end(), value) != values.end();
  };
  if (f.door_ids_size() + f.device_ids_size() > 0 &&
      !((row.door_id && listed(f.door_ids(), *row.door_id)) ||
        (!row.device_id.empty() && listed(f.device_ids(), row.device_id))))
    return false;
  if (f.person_ids_size() + f.holder_ids_size() > 0 &&
      !((row.person_id && listed(f.person_ids(), *row.person_id)) ||
        (!row.holder_id.empty() && listed(f.holder_ids(), row.holder_id))))
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

}  // namespace pdkarchive::query
