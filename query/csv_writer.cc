#include "query/csv_writer.h"

#include <charconv>
#include <cstring>
#include <optional>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "store/utf8.h"
#include "timeutil/time_util.h"

namespace pdkarchive::query {
namespace {

constexpr std::string_view kHeader =
    "sequence,occur_time,receive_time,topic,family,panel_id,door_id,"
    "door_name,person_id,ou_id,event_id,actor_user_id,subscription";
// PDK API 2.0's text ids: after every older column (raw included), so no
// column a reader of older exports knows ever moves.
constexpr std::string_view kV2Columns = ",device_id,holder_id,holder_name,cloud_node_id,system_id";
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

// Whether any byte of the word is zero (exact: no false positives).
constexpr uint64_t HasZeroByte(uint64_t word) {
  return (word - 0x0101010101010101ULL) & ~word & 0x8080808080808080ULL;
}

constexpr uint64_t Broadcast(char c) {
  return 0x0101010101010101ULL * static_cast<unsigned char>(c);
}

bool IsSpecial(char c) { return c == ',' || c == '"' || c == '\r' || c == '\n'; }

// Whether `value` holds a comma, quote, CR or LF: eight bytes a step, as
// raw payloads are long.
bool NeedsQuotes(std::string_view value) {
  const char* p = value.data();
  size_t n = value.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    if (HasZeroByte(word ^ Broadcast(',')) | HasZeroByte(word ^ Broadcast('"')) |
        HasZeroByte(word ^ Broadcast('\r')) | HasZeroByte(word ^ Broadcast('\n'))) {
      return true;
    }
  }
  for (; n > 0; ++p, --n) {
    if (IsSpecial(*p)) return true;
  }
  return false;
}

void AppendInt(int64_t value, std::string& out) {
  char text[24];
  const std::to_chars_result r = std::to_chars(text, text + sizeof text, value);
  out.append(text, static_cast<size_t>(r.ptr - text));
}

void AppendOptionalId(const std::optional<int64_t>& id, std::string& out) {
  if (id) AppendInt(*id, out);
}

// AppendCsvField for a value read from the archive: one that is not
// well-formed UTF-8 is written repaired (U+FFFD), the rest as they are.
void AppendStoredField(std::string_view value, bool text, std::string& out) {
  if (store::IsValidUtf8(value)) {
    AppendCsvField(value, text, out);
  } else {
    AppendCsvField(store::SanitizeUtf8(value), text, out);
  }
}

}  // namespace

void AppendCsvField(std::string_view value, bool text, std::string& out) {
  const bool guard = text && StartsFormula(value);
  if (!NeedsQuotes(value)) {
    if (guard) out.push_back('\'');
    out.append(value);
    return;
  }
  out.push_back('"');
  if (guard) out.push_back('\'');
  // Copies up to and including each quote, then doubles it.
  size_t from = 0;
  for (size_t quote = value.find('"'); quote != std::string_view::npos;
       quote = value.find('"', from)) {
    out.append(value.data() + from, quote + 1 - from);
    out.push_back('"');
    from = quote + 1;
  }
  out.append(value.data() + from, value.size() - from);
  out.push_back('"');
}

void AppendTimeCell(int64_t ms, std::string& out) {
  if (timeutil::AppendRfc3339Millis(ms, out)) return;
  out += absl::FormatTime("%E4Y-%m-%d%ET%H:%M:%E3SZ", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

std::string TimeCell(int64_t ms) {
  std::string out;
  AppendTimeCell(ms, out);
  return out;
}

void CsvWriter::AppendHeader(std::string& out) const {
  out.append(kHeader);
  if (include_raw_) out.append(kRawColumn);
  out.append(kV2Columns);
  out.append(kLineEnd);
}

void CsvWriter::AppendRow(const store::EventRow& row, std::string& out) const {
  store::EventView view;
  view.sequence = row.sequence;
  view.event_id = row.event_id;
  view.topic = row.topic;
  view.family = row.family;
  view.panel_id = row.panel_id;
  view.ou_id = row.ou_id;
  view.door_id = row.door_id;
  view.door_name = row.door_name;
  view.person_id = row.person_id;
  view.actor_user_id = row.actor_user_id;
  view.occur_time_ms = row.occur_time_ms;
  view.receive_time_ms = row.receive_time_ms;
  view.subscription = row.subscription;
  view.device_id = row.device_id;
  view.holder_id = row.holder_id;
  view.holder_name = row.holder_name;
  view.cloud_node_id = row.cloud_node_id;
  view.system_id = row.system_id;
  view.raw = row.raw;
  AppendRow(view, out);
}

void CsvWriter::AppendRow(const store::EventView& row, std::string& out) const {
  AppendInt(row.sequence, out);
  out.push_back(',');
  AppendTimeCell(row.occur_time_ms, out);
  out.push_back(',');
  AppendTimeCell(row.receive_time_ms, out);
  out.push_back(',');
  AppendStoredField(row.topic, true, out);
  out.push_back(',');
  AppendStoredField(row.family, true, out);
  out.push_back(',');
  AppendStoredField(row.panel_id, true, out);
  out.push_back(',');
  AppendOptionalId(row.door_id, out);
  out.push_back(',');
  AppendStoredField(row.door_name, true, out);
  out.push_back(',');
  AppendOptionalId(row.person_id, out);
  out.push_back(',');
  AppendStoredField(row.ou_id, true, out);
  out.push_back(',');
  AppendStoredField(row.event_id, true, out);
  out.push_back(',');
  AppendStoredField(row.actor_user_id, true, out);
  out.push_back(',');
  AppendStoredField(row.subscription, true, out);
  if (include_raw_) {
    out.push_back(',');
    AppendStoredField(row.raw, false, out);
  }
  for (std::string_view text :
       {row.device_id, row.holder_id, row.holder_name, row.cloud_node_id, row.system_id}) {
    out.push_back(',');
    AppendStoredField(text, true, out);
  }
  out.append(kLineEnd);
}

}  // namespace pdkarchive::query
