// How the client commands print what the server sends: JSON lines in
// protobuf's JSON mapping, and the `events` table. Pure functions of their
// arguments; thread-safe.
#ifndef PDKARCHIVE_CLI_EVENT_FORMAT_H_
#define PDKARCHIVE_CLI_EVENT_FORMAT_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "pdk/archive/v1/event_archive.pb.h"

namespace pdkarchive::cli {

// One JSON object and a newline for `message`, in protobuf's JSON mapping
// with proto field names (64-bit integers quoted, Timestamps as RFC 3339).
// Always valid UTF-8 JSON when it succeeds; InvalidArgument when a time
// cannot be written in RFC 3339.
absl::StatusOr<std::string> JsonLine(const google::protobuf::Message& message);

// A time as the table shows it: RFC 3339 with milliseconds, UTC.
absl::StatusOr<std::string> TableTime(const google::protobuf::Timestamp& ts);

// `text` made safe for a terminal: ill-formed UTF-8 replaced with U+FFFD and
// control characters with '?', so a payload cannot move the cursor.
std::string PrintableText(std::string_view text);

// The characters (UTF-8 code points) PrintableText(`text`) takes up.
size_t TextWidth(std::string_view text);

// `text` as one table cell `width` characters wide (UTF-8 code points) that
// always ends in at least one space: PrintableText, and text longer than
// width - 1 is cut and ends in "…". With `keep_whole` (numbers) the text is
// never cut; a longer one pushes the rest of its row right instead.
std::string TableCell(std::string_view text, size_t width,
                      bool keep_whole = false);

// The widths of the `events` table's columns, each including the space
// that separates it from the next one.
struct EventTableLayout {
  size_t sequence = 10;
  size_t occurred = 26;
  size_t topic = 32;
  size_t panel = 12;
  size_t door = 7;
  size_t door_name = 20;
};

// A layout sized to `events` (the first page): each text column as wide as
// its longest value, between its heading and a cap (topic 48, panel 24,
// door name 32; door, which shows a PDK 2.0 device id when there is no
// number, 36 and never under 7); later, longer values are cut with "…".
EventTableLayout LayoutFor(
    const google::protobuf::RepeatedPtrField<pdk::archive::v1::Event>& events);

// The heading line of the `events` table, with its newline.
std::string EventTableHeader(const EventTableLayout& layout);

// One event as a table line with its newline; InvalidArgument when its time
// cannot be written.
absl::StatusOr<std::string> EventTableRow(const pdk::archive::v1::Event& event,
                                          const EventTableLayout& layout);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_EVENT_FORMAT_H_
