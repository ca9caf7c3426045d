#include "ingest/normalizer.h"

#include <openssl/evp.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ingest/catalog.h"
#include "store/utf8.h"
#include "timeutil/time_util.h"

namespace pdkarchive::ingest {
namespace {

// Iterative: nesting never recurses. Validating: the stored `raw` is UTF-8,
// which SQLite text and protobuf strings downstream both rely on.
constexpr unsigned kParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

// The value of hex digit `c`, or -1.
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The code unit of the escape "\uXXXX" at text[at], or -1 when there is none.
int EscapedCodeUnit(std::string_view text, size_t at) {
  if (at > text.size() || text.size() - at < 6 || text[at] != '\\' ||
      text[at + 1] != 'u') {
    return -1;
  }
  int unit = 0;
  for (size_t i = at + 2; i < at + 6; ++i) {
    const int digit = HexDigit(text[i]);
    if (digit < 0) return -1;
    unit = unit * 16 + digit;
  }
  return unit;
}

bool IsHighSurrogate(int unit) { return unit >= 0xD800 && unit <= 0xDBFF; }
bool IsLowSurrogate(int unit) { return unit >= 0xDC00 && unit <= 0xDFFF; }

// Refuses nesting deeper than kMaxJsonDepth before RapidJSON sees the body,
// by counting brackets outside strings. Exact for valid JSON; for invalid
// JSON it may report depth where the parser would report something else,
// which is a refusal either way. Also refuses NUL bytes: RapidJSON's memory
// stream reads NUL as end of input, so "{...}\0junk" would otherwise pass
// as a single root (a NUL is never valid anywhere in JSON text). Sets
// `*surrogates` when a string holds a \u escape of a UTF-16 surrogate, paired
// or not, for RepairLoneSurrogates to look at.
absl::Status CheckStructure(std::string_view body, bool* surrogates) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("body is not valid JSON: NUL byte at offset ", i));
    }
    if (in_string) {
      if (c == '\\') {
        // "\uD8".."\uDF" (any case) begins a surrogate.
        if (body.size() - i > 3 && body[i + 1] == 'u' &&
            (body[i + 2] == 'd' || body[i + 2] == 'D') &&
            HexDigit(body[i + 3]) >= 8) {
          *surrogates = true;
        }
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > kMaxJsonDepth) {
          return absl::InvalidArgumentError(absl::StrCat(
              "JSON nests deeper than ", kMaxJsonDepth, " levels"));
        }
        break;
      case ']':
      case '}':
        --depth;
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

// Rewrites, in place, every \u escape of a lone surrogate (a high one not
// followed by a low one, or a low one not preceded by a high one) to \uFFFD,
// as JavaScript's String.prototype.toWellFormed does; pairs stay. PDK cuts
// names at UTF-16 boundaries, and RapidJSON refuses a lone high surrogate and
// decodes a lone low one to bytes that are not UTF-8. The length is kept, so
// parse error offsets still point into the body as received.
void RepairLoneSurrogates(std::string* text) {
  bool in_string = false;
  size_t i = 0;
  while (i < text->size()) {
    const char c = (*text)[i];
    if (!in_string) {
      if (c == '"') in_string = true;
      ++i;
      continue;
    }
    if (c == '"') {
      in_string = false;
      ++i;
      continue;
    }
    if (c != '\\') {
      ++i;
      continue;
    }
    const int unit = EscapedCodeUnit(*text, i);
    if (IsHighSurrogate(unit) &&
        IsLowSurrogate(EscapedCodeUnit(*text, i + 6))) {
      i += 12;
    } else if (IsHighSurrogate(unit) || IsLowSurrogate(unit)) {
      text->replace(i + 2, 4, "FFFD");
      i += 6;
    } else {
      i += 2;  // any other escape: the escaped character cannot end the string
    }
  }
}

absl::Status ParseError(const rapidjson::Document& doc) {
  // Debian's abseil has its own string_view type, so stay in std::string.
  std::string reason = rapidjson::GetParseError_En(doc.GetParseError());
  if (!reason.empty() && reason.back() == '.') reason.pop_back();
  return absl::InvalidArgumentError(absl::StrCat(
      "body is not valid JSON: ", reason, " at offset ", doc.GetErrorOffset()));
}

std::string_view View(const rapidjson::Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

// The value of the last member of `object` named `name`, or null. A later
// duplicate wins, as in ECMAScript's JSON.parse and most parsers, so the row
// says what any reader of `raw` would read.
const rapidjson::Value* LastMember(const rapidjson::Value& object,
                                   std::string_view name) {
  for (auto it = object.MemberEnd(); it != object.MemberBegin();) {
    --it;
    if (View(it->name) == name) return &it->value;
  }
  return nullptr;
}

// Digits only: no sign, no spaces, no exponent; must fit in int64.
std::optional<int64_t> ParseDecimal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int64_t value = 0;
  const auto [end, error] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// Reads fields at catalog paths out of one parsed payload, counting values
// that are present but cannot be read. Absent, JSON null and "" all mean "not
// there" and are not counted; neither is a path through a non-object (PDK
// would have changed the parent, not this field).
class FieldReader {
 public:
  explicit FieldReader(const rapidjson::Value& root) : root_(root) {}

  int unreadable() const { return unreadable_; }

  // A JSON string; with `allow_integer`, also a JSON integer as decimal text.
  std::string Text(const std::vector<FieldPath>& paths, bool allow_integer) {
    return First(paths,
                 [allow_integer](const rapidjson::Value& v) {
                   return ReadText(v, allow_integer);
                 })
        .value_or("");
  }

  // A JSON integer, or a string of decimal digits ("12"); not a float.
  std::optional<int64_t> Integer(const std::vector<FieldPath>& paths) {
    return First(paths, ReadInteger);
  }

  // A door id: an Integer, except the archive's "no door" (store::kNoDoor),
  // which no real door can have; it is unreadable rather than confused with
  // the events that name no door.
  std::optional<int64_t> DoorId(const std::vector<FieldPath>& paths) {
    return First(paths, [](const rapidjson::Value& v) -> std::optional<int64_t> {
      std::optional<int64_t> id = ReadInteger(v);
      if (id == store::kNoDoor) return std::nullopt;
      return id;
    });
  }

  // Epoch milliseconds (read as Integer), then ISO 8601 text; a value out of
  // the years 0001–9999 is unreadable. Floats are refused rather than
  // truncated: PDK sends integer ms, and a fractional number is more likely
  // seconds than ms, which truncation would turn into a date in 1970.
  std::optional<int64_t> TimeMs(const std::vector<FieldPath>& ms_paths,
                                const std::vector<FieldPath>& iso_paths) {
    if (std::optional<int64_t> ms = First(ms_paths, ReadEpochMs)) return ms;
    return First(iso_paths, ReadIsoTime);
  }

 private:
  static std::optional<std::string> ReadText(const rapidjson::Value& v,
                                             bool allow_integer) {
    if (v.IsString()) return std::string(View(v));
    if (allow_integer && v.IsInt64()) return absl::StrCat(v.GetInt64());
    if (allow_integer && v.IsUint64()) return absl::StrCat(v.GetUint64());
    return std::nullopt;
  }

  static std::optional<int64_t> ReadInteger(const rapidjson::Value& v) {
    if (v.IsInt64()) return v.GetInt64();
    if (v.IsString()) return ParseDecimal(View(v));
    return std::nullopt;
  }

  static std::optional<int64_t> ReadEpochMs(const rapidjson::Value& v) {
    // The times both RFC 3339 and google.protobuf.Timestamp can carry;
    // anything outside is unreadable, not clamped.
    std::optional<int64_t> ms = ReadInteger(v);
    if (ms && (*ms < timeutil::kMinTimeMs || *ms > timeutil::kMaxTimeMs)) {
      return std::nullopt;
    }
    return ms;
  }

  static std::optional<int64_t> ReadIsoTime(const rapidjson::Value& v) {
    if (!v.IsString()) return std::nullopt;
    absl::StatusOr<int64_t> ms = timeutil::ParseRfc3339Ms(View(v));
    if (!ms.ok()) return std::nullopt;
    return *ms;
  }

  const rapidjson::Value* Find(const FieldPath& path) const {
    if (path.empty()) return nullptr;
    const rapidjson::Value* value = &root_;
    for (std::string_view name : path) {
      if (!value->IsObject()) return nullptr;
      value = LastMember(*value, name);
      if (value == nullptr) return nullptr;
    }
    if (value->IsNull()) return nullptr;
    if (value->IsString() && value->GetStringLength() == 0) return nullptr;
    return value;
  }

  // The first path whose value `read` accepts; each present value it refuses
  // counts as unreadable and the next path is tried.
  template <typename Read>
  auto First(const std::vector<FieldPath>& paths, Read read)
      -> decltype(read(std::declval<const rapidjson::Value&>())) {
    for (const FieldPath& path : paths) {
      const rapidjson::Value* value = Find(path);
      if (value == nullptr) continue;
      if (auto result = read(*value)) return result;
      ++unreadable_;
    }
    return std::nullopt;
  }

  const rapidjson::Value& root_;
  int unreadable_ = 0;
};

void AppendLengthPrefixed(std::string_view field, std::string* out) {
  const uint64_t size = field.size();
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((size >> shift) & 0xff));
  }
  out->append(field);
}

}  // namespace

absl::StatusOr<Normalized> Normalize(std::string_view body,
                                     int64_t receive_time_ms,
                                     std::string_view subscription,
                                     int api) {
  bool surrogates = false;
  if (absl::Status status = CheckStructure(body, &surrogates); !status.ok()) {
    return status;
  }
  // RapidJSON reads the body itself unless a lone surrogate needs repair.
  std::string repaired;
  std::string_view text = body;
  if (surrogates) {
    repaired.assign(body);
    RepairLoneSurrogates(&repaired);
    text = repaired;
  }

  rapidjson::Document doc;
  doc.Parse<kParseFlags>(text.empty() ? "" : text.data(), text.size());
  if (doc.HasParseError()) return ParseError(doc);
  if (!doc.IsObject()) {
    return absl::InvalidArgumentError("body is not a JSON object");
  }
  const rapidjson::Value* topic_value = LastMember(doc, "topic");
  if (topic_value == nullptr || topic_value->IsNull()) {
    return absl::InvalidArgumentError("missing topic");
  }
  if (!topic_value->IsString() || topic_value->GetStringLength() == 0) {
    return absl::InvalidArgumentError("topic must be a non-empty string");
  }

  Normalized out;
  store::EventRow& row = out.row;
  row.topic = std::string(View(*topic_value));
  store::SanitizeUtf8InPlace(&row.topic);
  const TopicSpec& spec = LookupTopic(row.topic, api);
  out.known_topic = IsKnownTopic(row.topic, api);
  FieldReader fields(doc);
  row.family = std::string(store::FamilyName(spec.family));
  row.event_id = fields.Text(spec.event_id_paths, /*allow_integer=*/false);
  row.panel_id = fields.Text(spec.panel_id_paths, /*allow_integer=*/true);
  row.ou_id = fields.Text(spec.ou_id_paths, /*allow_integer=*/true);
  row.door_id = fields.DoorId(spec.door_id_paths);
  row.door_name = fields.Text(spec.door_name_paths, /*allow_integer=*/false);
  row.person_id = fields.Integer(spec.person_id_paths);
  row.actor_user_id =
      fields.Text(spec.actor_user_id_paths, /*allow_integer=*/true);
  row.device_id = fields.Text(spec.device_id_paths, /*allow_integer=*/true);
  row.holder_id = fields.Text(spec.holder_id_paths, /*allow_integer=*/true);
  row.holder_name = fields.Text(spec.holder_name_paths, /*allow_integer=*/false);
  row.cloud_node_id =
      fields.Text(spec.cloud_node_id_paths, /*allow_integer=*/true);
  row.system_id = fields.Text(spec.system_id_paths, /*allow_integer=*/true);
  row.occur_time_ms = fields.TimeMs(spec.time_ms_paths, spec.time_iso_paths)
                          .value_or(receive_time_ms);
  row.receive_time_ms = receive_time_ms;
  row.subscription = std::string(subscription);
  // Every text field leaves well-formed (the parse already validated the
  // body's bytes and repaired its escapes; this keeps the promise whatever
  // a field's source).
  for (std::string* text_field :
       {&row.event_id, &row.panel_id, &row.ou_id, &row.door_name,
        &row.actor_user_id, &row.device_id, &row.holder_id, &row.holder_name,
        &row.cloud_node_id, &row.system_id, &row.subscription}) {
    store::SanitizeUtf8InPlace(text_field);
  }
  row.raw = std::string(body);
  // Over the row's own (well-formed) values: a redelivery of the same body
  // reads the same values and so gets the same key.
  row.dedupe_key = DedupeKey(row.topic, row.panel_id, row.event_id, row.raw);
  out.unreadable_fields = fields.unreadable();
  return out;
}

std::string DedupeKey(std::string_view topic, std::string_view panel_id,
                      std::string_view event_id, std::string_view raw_body) {
  // Domain-separated and length-prefixed, so no two different inputs (even
  // with NULs inside a field) hash the same bytes.
  std::string input;
  if (!event_id.empty()) {
    input.assign("id\0", 3);
    AppendLengthPrefixed(topic, &input);
    AppendLengthPrefixed(panel_id, &input);
    AppendLengthPrefixed(event_id, &input);
  } else {
    input.assign("raw\0", 4);
    input.append(raw_body);
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_size,
                 EVP_sha256(), nullptr) != 1 ||
      digest_size < 16) {
    // Only an OpenSSL misconfiguration gets here; a key that cannot be
    // computed must not silently collide with others.
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(digest.data()), 16);
}

}  // namespace pdkarchive::ingest
