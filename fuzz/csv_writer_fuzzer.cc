// Fuzzes query::CsvWriter. The input gives every field of a row; the writer's
// output (header and the row twice) is read back with an RFC 4180 parser
// written here, and every cell must come back as written: numbers as
// decimal text, times as query::TimeCell, text cells byte for byte with
// a leading ' exactly when they start like a formula, raw untouched; except
// that text which is not UTF-8 comes back as store::SanitizeUtf8 repairs it,
// and the whole output is always well-formed UTF-8. Times within the years
// 0001-9999 must also parse back with timeutil::ParseRfc3339Ms.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fuzz/fuzz_support.h"
#include "query/csv_writer.h"
#include "store/event.h"
#include "store/utf8.h"
#include "timeutil/time_util.h"

namespace {

using pdkarchive::fuzz::FuzzInput;
using pdkarchive::query::CsvWriter;
using pdkarchive::query::TimeCell;
namespace timeutil = pdkarchive::timeutil;
namespace store = pdkarchive::store;

using Record = std::vector<std::string>;

// Splits RFC 4180 text into records. Aborts on anything a strict reader
// would refuse: a quote inside an unquoted field, a bare CR or LF, text after
// a closing quote, an unterminated quote, a last record without CRLF.
std::vector<Record> ParseCsv(std::string_view text) {
  std::vector<Record> records;
  Record record;
  size_t i = 0;
  while (i < text.size()) {
    std::string field;
    if (text[i] == '"') {
      ++i;
      while (true) {
        FUZZ_CHECK(i < text.size(), "unterminated quoted field");
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
    } else {
      while (i < text.size() && text[i] != ',' && text[i] != '\r') {
        FUZZ_CHECK(text[i] != '"' && text[i] != '\n', "quote or LF in an unquoted field");
        field.push_back(text[i++]);
      }
    }
    record.push_back(std::move(field));
    FUZZ_CHECK(i < text.size(), "record not ended by CRLF");
    if (text[i] == ',') {
      ++i;
      FUZZ_CHECK(i < text.size(), "record not ended by CRLF");
      continue;
    }
    FUZZ_CHECK(text.substr(i, 2) == "\r\n", "text after a field");
    i += 2;
    records.push_back(std::move(record));
    record.clear();
  }
  return records;
}

// A text cell as the writer shows it: repaired when it is not UTF-8, then
// guarded against formula injection.
std::string Guarded(const std::string& stored) {
  const std::string text =
      store::IsValidUtf8(stored) ? stored : store::SanitizeUtf8(stored);
  if (!text.empty() && std::string_view("=+-@\t\r").find(text[0]) != std::string_view::npos) {
    return "'" + text;
  }
  return text;
}

std::string Id(const std::optional<int64_t>& id) {
  return id ? std::to_string(*id) : std::string();
}

void CheckTime(int64_t ms, const std::string& cell) {
  FUZZ_CHECK(cell == TimeCell(ms), cell);
  if (ms < timeutil::kMinTimeMs || ms > timeutil::kMaxTimeMs) return;
  auto back = timeutil::ParseRfc3339Ms(cell);
  FUZZ_CHECK(back.ok() && *back == ms, cell);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const bool include_raw = in.Bool();
  store::EventRow row;
  row.sequence = in.Int64();
  row.occur_time_ms = in.Int64();
  row.receive_time_ms = in.Int64();
  if (in.Bool()) row.door_id = in.Int64();
  if (in.Bool()) row.person_id = in.Int64();
  row.topic = in.String();
  row.family = in.String();
  row.panel_id = in.String();
  row.door_name = in.String();
  row.ou_id = in.String();
  row.event_id = in.String();
  row.actor_user_id = in.String();
  row.subscription = in.String();
  row.device_id = in.String();
  row.holder_id = in.String();
  row.holder_name = in.String();
  row.cloud_node_id = in.String();
  row.system_id = in.String();
  row.raw = in.Rest();

  const CsvWriter writer(include_raw);
  std::string csv;
  writer.AppendHeader(csv);
  writer.AppendRow(row, csv);
  writer.AppendRow(row, csv);
  FUZZ_CHECK(store::IsValidUtf8(csv), "the CSV is not UTF-8");
  const std::vector<Record> records = ParseCsv(csv);
  FUZZ_CHECK(records.size() == 3, absl::StrCat(records.size(), " records"));

  Record header = {"sequence", "occur_time", "receive_time", "topic",    "family",
                   "panel_id", "door_id",    "door_name",    "person_id", "ou_id",
                   "event_id", "actor_user_id", "subscription"};
  if (include_raw) header.push_back("raw");
  for (const char* column :
       {"device_id", "holder_id", "holder_name", "cloud_node_id", "system_id"}) {
    header.push_back(column);
  }
  FUZZ_CHECK(records[0] == header, absl::StrJoin(records[0], ","));

  Record expected = {std::to_string(row.sequence), "", "", Guarded(row.topic),
                     Guarded(row.family), Guarded(row.panel_id), Id(row.door_id),
                     Guarded(row.door_name), Id(row.person_id), Guarded(row.ou_id),
                     Guarded(row.event_id), Guarded(row.actor_user_id),
                     Guarded(row.subscription)};
  if (include_raw) expected.push_back(store::SanitizeUtf8(row.raw));
  for (const std::string* text : {&row.device_id, &row.holder_id, &row.holder_name,
                                  &row.cloud_node_id, &row.system_id}) {
    expected.push_back(Guarded(*text));
  }
  for (size_t r = 1; r < records.size(); ++r) {
    Record got = records[r];
    FUZZ_CHECK(got.size() == expected.size(), absl::StrCat(got.size(), " cells"));
    CheckTime(row.occur_time_ms, got[1]);
    CheckTime(row.receive_time_ms, got[2]);
    got[1].clear();
    got[2].clear();
    for (size_t c = 0; c < expected.size(); ++c) {
      FUZZ_CHECK(got[c] == expected[c], absl::StrCat("cell ", c, ": ", got[c]));
    }
  }
  return 0;
}
