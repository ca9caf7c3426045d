#include "cli/event_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "store/utf8.h"
#include "timeutil/time_util.h"

namespace pdkarchive::cli {
namespace {

namespace v1 = ::pdk::archive::v1;

// ---- JSON, written so that any value the server sends prints. ----

// Appends `text` as a JSON string (RFC 8259): quotes, backslashes, control
// characters, DEL, U+2028 and U+2029 escaped; ill-formed UTF-8 replaced with
// U+FFFD (store::SanitizeUtf8), so the line is valid UTF-8 JSON whatever the
// server sent.
void AppendJsonString(std::string_view raw, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string repaired;
  std::string_view text = raw;
  if (!store::IsValidUtf8(raw)) {
    repaired = store::SanitizeUtf8(raw);
    text = repaired;
  }
  out.push_back('"');
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    // U+2028 and U+2029 are valid JSON but end lines in JavaScript.
    if (c == 0xE2 && i + 2 < text.size() &&
        static_cast<unsigned char>(text[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(text[i + 2]) & 0xFE) == 0xA8) {
      out.append(static_cast<unsigned char>(text[i + 2]) == 0xA8 ? "\\u2028"
                                                                 : "\\u2029");
      i += 2;
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

absl::Status AppendJsonMessage(const google::protobuf::Message& message,
                               std::string& out);

// Appends one value of `field` (element `index` of a repeated field, or the
// singular value when `index` < 0) as protobuf's JSON mapping writes it:
// 64-bit integers as quoted decimals, enums by name, bytes as base64,
// Timestamps as RFC 3339 strings. InvalidArgument for a Timestamp that RFC
// 3339 cannot express.
absl::Status AppendJsonValue(const google::protobuf::Message& message,
                             const google::protobuf::FieldDescriptor& field,
                             int index, std::string& out) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection& r = *message.GetReflection();
  const bool rep = index >= 0;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(&out, rep ? r.GetRepeatedInt32(message, &field, index)
                                : r.GetInt32(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(&out, rep ? r.GetRepeatedUInt32(message, &field, index)
                                : r.GetUInt32(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(&out, "\"",
                      rep ? r.GetRepeatedInt64(message, &field, index)
                          : r.GetInt64(message, &field),
                      "\"");
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(&out, "\"",
                      rep ? r.GetRepeatedUInt64(message, &field, index)
                          : r.GetUInt64(message, &field),
                      "\"");
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      const double value =
          field.cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE
              ? (rep ? r.GetRepeatedDouble(message, &field, index)
                     : r.GetDouble(message, &field))
              : (rep ? r.GetRepeatedFloat(message, &field, index)
                     : r.GetFloat(message, &field));
      if (std::isnan(value)) {
        out.append("\"NaN\"");
      } else if (std::isinf(value)) {
        out.append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
      } else {
        char text[32];
        std::snprintf(text, sizeof text, "%.17g", value);
        out.append(text);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      out.append((rep ? r.GetRepeatedBool(message, &field, index)
                      : r.GetBool(message, &field))
                     ? "true"
                     : "false");
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int number = rep ? r.GetRepeatedEnumValue(message, &field, index)
                             : r.GetEnumValue(message, &field);
      const google::protobuf::EnumValueDescriptor* value =
          field.enum_type()->FindValueByNumber(number);
      if (value == nullptr) {
        absl::StrAppend(&out, number);
      } else {
        AppendJsonString(value->name(), out);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& value =
          rep ? r.GetRepeatedStringReference(message, &field, index, &scratch)
              : r.GetStringReference(message, &field, &scratch);
      if (field.type() == FieldDescriptor::TYPE_BYTES) {
        AppendJsonString(absl::Base64Escape(value), out);
      } else {
        AppendJsonString(value, out);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const google::protobuf::Message& sub =
          rep ? r.GetRepeatedMessage(message, &field, index)
              : r.GetMessage(message, &field);
      if (sub.GetDescriptor()->full_name() != "google.protobuf.Timestamp") {
        return AppendJsonMessage(sub, out);
      }
      const google::protobuf::Descriptor& type = *sub.GetDescriptor();
      const google::protobuf::Reflection& sub_r = *sub.GetReflection();
      const int64_t seconds = sub_r.GetInt64(sub, type.FindFieldByNumber(1));
      const int64_t nanos = sub_r.GetInt32(sub, type.FindFieldByNumber(2));
      std::string text;
      if (absl::Status s = timeutil::AppendRfc3339(
              seconds, nanos, timeutil::Fraction::kAsNeeded, text);
          !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field.name(), ": ", s.message()));
      }
      AppendJsonString(text, out);
      break;
    }
  }
  return absl::OkStatus();
}

// Appends `message` as one JSON object in protobuf's JSON mapping with proto
// field names: the fields that are set, in field-number order (maps, which
// our messages do not use, come out as arrays of {"key","value"} objects).
// Always valid JSON when it succeeds; InvalidArgument (with `out` partly
// written) when a time cannot be written.
absl::Status AppendJsonMessage(const google::protobuf::Message& message,
                               std::string& out) {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  out.push_back('{');
  for (size_t i = 0; i < fields.size(); ++i) {
    const google::protobuf::FieldDescriptor& field = *fields[i];
    if (i > 0) out.push_back(',');
    AppendJsonString(field.name(), out);
    out.push_back(':');
    if (!field.is_repeated()) {
      if (absl::Status s = AppendJsonValue(message, field, -1, out); !s.ok())
        return s;
      continue;
    }
    out.push_back('[');
    const int size = message.GetReflection()->FieldSize(message, &field);
    for (int j = 0; j < size; ++j) {
      if (j > 0) out.push_back(',');
      if (absl::Status s = AppendJsonValue(message, field, j, out); !s.ok())
        return s;
    }
    out.push_back(']');
  }
  out.push_back('}');
  return absl::OkStatus();
}

// The number of code points in valid UTF-8 `text`.
size_t CodePoints(std::string_view text) {
  size_t n = 0;
  for (char c : text)
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// The first `count` code points of valid UTF-8 `text`.
std::string_view FirstCodePoints(std::string_view text, size_t count) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (seen == count) return text.substr(0, i);
      ++seen;
    }
  }
  return text;
}

// The width a column needs for `values` (plus the separating space),
// between `heading`'s and `cap`.
template <typename Get>
size_t ColumnWidth(const google::protobuf::RepeatedPtrField<v1::Event>& events,
                   Get get, std::string_view heading, size_t cap) {
  size_t widest = heading.size();
  for (const v1::Event& e : events) {
    widest = std::max(widest, CodePoints(store::SanitizeUtf8(get(e))));
  }
  return std::min(widest, cap) + 1;
}

std::string OrDash(const std::string& text) {
  return text.empty() ? "-" : text;
}

// The door cell: 1.0's number, else 2.0's device id, else "-".
std::string DoorText(const v1::Event& e) {
  if (e.has_door_id()) return absl::StrCat(e.door_id());
  return OrDash(e.device_id());
}

// The person cell: 1.0's number, else 2.0's holder id; then the holder's
// name in parentheses when the event has one.
std::string PersonText(const v1::Event& e) {
  std::string text = e.has_person_id() ? absl::StrCat(e.person_id()) : OrDash(e.holder_id());
  if (!e.holder_name().empty()) absl::StrAppend(&text, " (", e.holder_name(), ")");
  return text;
}

}  // namespace

absl::StatusOr<std::string> JsonLine(const google::protobuf::Message& message) {
  std::string line;
  if (absl::Status s = AppendJsonMessage(message, line); !s.ok()) return s;
  line.push_back('\n');
  return line;
}

absl::StatusOr<std::string> TableTime(const google::protobuf::Timestamp& ts) {
  std::string text;
  if (absl::Status s = timeutil::AppendRfc3339(
          ts.seconds(), ts.nanos(), timeutil::Fraction::kMillis, text);
      !s.ok()) {
    return s;
  }
  return text;
}

std::string PrintableText(std::string_view raw) {
  std::string text = store::SanitizeUtf8(raw);
  for (char& c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) c = '?';
  }
  return text;
}

size_t TextWidth(std::string_view text) {
  return CodePoints(PrintableText(text));
}

std::string TableCell(std::string_view raw, size_t width, bool keep_whole) {
  std::string text = PrintableText(raw);
  const size_t room = width > 0 ? width - 1 : 0;
  size_t length = CodePoints(text);
  if (!keep_whole && length > room) {
    text = room == 0 ? std::string()
                     : std::string(FirstCodePoints(text, room - 1)) + "…";
    length = room;
  }
  text.append(length < width ? width - length : 1, ' ');
  return text;
}

EventTableLayout LayoutFor(
    const google::protobuf::RepeatedPtrField<v1::Event>& events) {
  EventTableLayout layout;
  layout.topic = ColumnWidth(
      events, [](const v1::Event& e) { return e.topic(); }, "TOPIC", 48);
  layout.panel = ColumnWidth(
      events, [](const v1::Event& e) { return e.panel_id(); }, "PANEL", 24);
  layout.door_name = ColumnWidth(
      events, [](const v1::Event& e) { return OrDash(e.door_name()); },
      "DOOR NAME", 32);
  // Wide enough for a 2.0 device id (a UUID, 36), never narrower than before.
  layout.door = std::max(layout.door, ColumnWidth(events, DoorText, "DOOR", 36));
  return layout;
}

std::string EventTableHeader(const EventTableLayout& layout) {
  return absl::StrCat(TableCell("SEQUENCE", layout.sequence),
                      TableCell("OCCURRED (UTC)", layout.occurred),
                      TableCell("TOPIC", layout.topic),
                      TableCell("PANEL", layout.panel),
                      TableCell("DOOR", layout.door),
                      TableCell("DOOR NAME", layout.door_name), "PERSON\n");
}

absl::StatusOr<std::string> EventTableRow(const v1::Event& e,
                                          const EventTableLayout& layout) {
  absl::StatusOr<std::string> occurred = TableTime(e.occur_time());
  if (!occurred.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("occur_time: ", occurred.status().message()));
  }
  return absl::StrCat(
      TableCell(absl::StrCat(e.sequence()), layout.sequence, true),
      TableCell(*occurred, layout.occurred, true),
      TableCell(OrDash(e.topic()), layout.topic),
      TableCell(OrDash(e.panel_id()), layout.panel),
      TableCell(DoorText(e), layout.door, true),
      TableCell(OrDash(e.door_name()), layout.door_name), PrintableText(PersonText(e)),
      "\n");
}

}  // namespace pdkarchive::cli
