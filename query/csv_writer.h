// RFC 4180 CSV for ExportEvents: CRLF line ends, fields quoted when they hold
// a comma, quote, CR or LF (quotes doubled), times as UTC RFC 3339 with
// milliseconds, and text cells that a spreadsheet would run as a formula
// (starting with = + - @ TAB CR) prefixed with ' (OWASP). Rows come out as
// UTF-8 even when the archive holds bytes that are not.
#ifndef PDKARCHIVE_QUERY_CSV_WRITER_H_
#define PDKARCHIVE_QUERY_CSV_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "store/archive_reader.h"
#include "store/event.h"

namespace pdkarchive::query {

// Stateless apart from the column choice; thread-compatible.
class CsvWriter {
 public:
  // With `include_raw`, a last column `raw` carries the payload as stored.
  explicit CsvWriter(bool include_raw) : include_raw_(include_raw) {}

  // Appends the header row: sequence,occur_time,receive_time,topic,family,
  // panel_id,door_id,door_name,person_id,ou_id,event_id,actor_user_id,
  // subscription[,raw],device_id,holder_id,holder_name,cloud_node_id,
  // system_id (PDK 2.0's ids last, so no older column moves).
  void AppendHeader(std::string& out) const;

  // Appends one row for `row`, in the header's column order. Both forms
  // write the same bytes for the same values. The output is UTF-8 whatever
  // the row holds: a text or raw cell that is not well-formed UTF-8 (a row
  // stored before ingest repaired it) is written with U+FFFD in place of the
  // bad bytes.
  void AppendRow(const store::EventRow& row, std::string& out) const;
  void AppendRow(const store::EventView& row, std::string& out) const;

 private:
  bool include_raw_;
};

// Appends `value` as one field: guarded against formula injection when
// `text` is true, then quoted if needed. Writes the bytes it is given.
void AppendCsvField(std::string_view value, bool text, std::string& out);

// Appends the time cell of `ms` (milliseconds since the epoch): the UTC RFC
// 3339 time with milliseconds, "2022-03-10T14:04:11.104Z"
// (timeutil::AppendRfc3339Millis); for a year outside 0000-9999, which only a
// corrupt or synthetic row carries, the same layout with the year as absl's
// "%E4Y" writes it ("10000-01-01T00:00:00.000Z").
void AppendTimeCell(int64_t ms, std::string& out);

// AppendTimeCell's text.
std::string TimeCell(int64_t ms);

}  // namespace pdkarchive::query

#endif  // PDKARCHIVE_QUERY_CSV_WRITER_H_
