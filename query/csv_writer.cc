#include "query/csv_writer.h"

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pdkarchive::query {
namespace {

constexpr std::string_view kHeader =
    "sequence,occur_time,receive_time,topic,family,panel_id,door_id,"
    "door_name,person_id,ou_id,event_id,actor_user_id,subscription";
constexpr std::string_view kRawColumn = ",raw";
constexpr std::string_view kLineEnd = "\r\n";

bool StartsFormula(std::string_view value) {
  if (value.empty()) return false;
  switch (value.front()) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r':
      return true;
    default:
      return false;
  }
}

void AppendOptionalId(const std::optional<int64_t>& id, std::string& out) {
  if (id) out += std::to_string(*id);
}

}  // namespace

void AppendCsvField(std::string_view value, bool text, std::string& out) {
  const bool guard = text && StartsFormula(value);
  const bool quote = value.find_first_of(",\"\r\n") != std::string_view::npos;
  if (!quote) {
    if (guard) out.push_back('\'');
    out.append(value);
    return;
  }
  out.push_back('"');
  if (guard) out.push_back('\'');
  for (char c : value) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

std::string FormatRfc3339Millis(int64_t ms) {
  return absl::FormatTime("%E4Y-%m-%d%ET%H:%M:%E3SZ", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

void CsvWriter::AppendHeader(std::string& out) const {
  out.append(kHeader);
  if (include_raw_) out.append(kRawColumn);
  out.append(kLineEnd);
}

void CsvWriter::AppendRow(const store::EventRow& row, std::string& out) const {
  out += std::to_string(row.sequence);
  out.push_back(',');
  out += FormatRfc3339Millis(row.occur_time_ms);
  out.push_back(',');
  out += FormatRfc3339Millis(row.receive_time_ms);
  out.push_back(',');
  AppendCsvField(row.topic, true, out);
  out.push_back(',');
  AppendCsvField(row.family, true, out);
  out.push_back(',');
  AppendCsvField(row.panel_id, true, out);
  out.push_back(',');
  AppendOptionalId(row.door_id, out);
  out.push_back(',');
  AppendCsvField(row.door_name, true, out);
  out.push_back(',');
  AppendOptionalId(row.person_id, out);
  out.push_back(',');
  AppendCsvField(row.ou_id, true, out);
  out.push_back(',');
  AppendCsvField(row.event_id, true, out);
  out.push_back(',');
  AppendCsvField(row.actor_user_id, true, out);
  out.push_back(',');
  AppendCsvField(row.subscription, true, out);
  if (include_raw_) {
    out.push_back(',');
    AppendCsvField(row.raw, false, out);
  }
  out.append(kLineEnd);
}

}  // namespace pdkarchive::query
