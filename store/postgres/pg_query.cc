#include "store/postgres/pg_query.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "timeutil/time_util.h"

namespace pdkarchive::store::pg {
namespace {

// The row columns, in DecodeRow's order; the payload is the last and is
// replaced by an empty value when the read does not want it (so its TOASTed
// bytes are never fetched).
constexpr char kRowColumnsButRaw[] =
    "sequence, event_id, topic, family, panel_id, ou_id, door_id, door_name, person_id, "
    "actor_user_id, occur_time, receive_time, subscription, device_id, holder_id, holder_name, "
    "cloud_node_id, system_id, ";
constexpr char kRaw[] = "raw";
constexpr char kNoRaw[] = "''::bytea AS raw";
constexpr char kFromEvents[] = " FROM events";
constexpr char kUnionAll[] = " UNION ALL ";
constexpr char kOrderAscending[] = " ORDER BY occur_time, sequence LIMIT ";
constexpr char kOrderDescending[] = " ORDER BY occur_time DESC, sequence DESC LIMIT ";

constexpr char kStartTime[] = "occur_time >= ";
constexpr char kEndTime[] = "occur_time < ";
constexpr char kStartDay[] = "day >= ";
constexpr char kEndDay[] = "day < ";
constexpr char kTopic[] = "topic";
constexpr char kFamilyEquals[] = "family = ";
constexpr char kPanel[] = "panel_id";
constexpr char kDoor[] = "door_id";
constexpr char kPerson[] = "person_id";
constexpr char kOu[] = "ou_id";
constexpr char kDevice[] = "device_id";
constexpr char kHolder[] = "holder_id";

// Positions in the row columns.
constexpr int kSequence = 0;
constexpr int kEventId = 1;
constexpr int kTopicColumn = 2;
constexpr int kFamily = 3;
constexpr int kPanelId = 4;
constexpr int kOuId = 5;
constexpr int kDoorId = 6;
constexpr int kDoorName = 7;
constexpr int kPersonId = 8;
constexpr int kActorUserId = 9;
constexpr int kOccurTime = 10;
constexpr int kReceiveTime = 11;
constexpr int kSubscription = 12;
constexpr int kDeviceId = 13;  // then holder_id, holder_name, cloud_node_id, system_id
constexpr int kRawColumn = 18;

// A list over several values of one field runs one ordered arm per value,
// merged (a Merge Append), where an IN list reads every match and sorts.
constexpr size_t kMaxMergedArms = 64;
// Every arm repeats the other fields' conditions: split only while the
// repeated values stay few, so a large filter cannot multiply into a huge
// statement.
constexpr size_t kMaxRepeatedArmValues = 2048;
// Past this many values, an IN list binds one array instead of a parameter
// each.
constexpr size_t kMaxInParameters = 256;

template <typename T>
std::vector<T> SortedUnique(std::vector<T> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

std::string SelectRows(bool with_raw) {
  return absl::StrCat("SELECT ", kRowColumnsButRaw, with_raw ? kRaw : kNoRaw, kFromEvents);
}

}  // namespace

bool IsPrefixPattern(std::string_view topic) {
  return topic.size() >= 2 && topic.substr(topic.size() - 2) == ".*";
}

std::optional<Query> ResolvePrefixes(const std::vector<std::string>& topics) {
  Query out;
  for (const std::string& topic : SortedUnique(topics)) {
    if (!IsPrefixPattern(topic)) continue;
    std::string low = topic.substr(0, topic.size() - 1);
    std::string high = low;
    high.back() = '/';
    out.params.Text(low);
    const int low_param = out.params.size();
    out.params.Text(high);
    const int high_param = out.params.size();
    // A loose index scan: each step finds the next topic above the last.
    if (!out.sql.empty()) out.sql += kUnionAll;
    out.sql += absl::StrCat(
        "(WITH RECURSIVE t(topic) AS ((SELECT topic FROM counts_daily_topic WHERE topic >= $",
        low_param, " AND topic < $", high_param,
        " ORDER BY topic LIMIT 1) UNION ALL SELECT (SELECT c.topic FROM counts_daily_topic c "
        "WHERE c.topic > t.topic AND c.topic < $",
        high_param, " ORDER BY c.topic LIMIT 1) FROM t WHERE t.topic IS NOT NULL) "
        "SELECT topic FROM t WHERE topic IS NOT NULL)");
  }
  if (out.sql.empty()) return std::nullopt;
  return out;
}

std::string Conditions::Bind(std::string_view text) {
  query_.params.Text(text);
  return absl::StrCat("$", query_.params.size());
}

std::string Conditions::Bind(int64_t value) {
  query_.params.Int(value);
  return absl::StrCat("$", query_.params.size());
}

void Conditions::Add(std::string_view fragment) { parts_.emplace_back(fragment); }

template <typename T>
void Conditions::AddInList(std::string_view column, const std::vector<T>& raw) {
  if (raw.empty()) return;
  const std::vector<T> values = SortedUnique(raw);
  if (values.size() == 1) {
    parts_.push_back(absl::StrCat(std::string(column), " = ", Bind(values[0])));
    return;
  }
  if (values.size() > kMaxInParameters) {
    // One array parameter: no filter can reach the protocol's limit of
    // 65535 parameters.
    std::string array = "{";
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) array += ',';
      if constexpr (std::is_same_v<T, int64_t>) {
        array += std::to_string(values[i]);
      } else {
        array += '"';
        for (char c : values[i]) {
          if (c == '"' || c == '\\') array += '\\';
          array += c;
        }
        array += '"';
      }
    }
    array += '}';
    constexpr const char* kArrayType = std::is_same_v<T, int64_t> ? "::bigint[])" : "::text[])";
    parts_.push_back(absl::StrCat(std::string(column), " = ANY(", Bind(array), kArrayType));
    return;
  }
  std::string out = absl::StrCat(std::string(column), " IN (");
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += Bind(values[i]);
  }
  out += ")";
  parts_.push_back(std::move(out));
}

void Conditions::AddIn(std::string_view column, const std::vector<int64_t>& values) {
  AddInList(column, values);
}

void Conditions::AddIn(std::string_view column, const std::vector<std::string>& values) {
  AddInList(column, values);
}

void Conditions::AddNumberOrText(std::string_view number_column,
                                 const std::vector<int64_t>& numbers,
                                 std::string_view text_column,
                                 const std::vector<std::string>& texts) {
  if (numbers.empty() || texts.empty()) {
    AddIn(number_column, numbers);
    AddIn(text_column, texts);
    return;
  }
  Conditions either(query_);
  either.AddIn(number_column, numbers);
  either.AddIn(text_column, texts);
  parts_.push_back(absl::StrCat("(", either.parts_[0], " OR ", either.parts_[1], ")"));
}

void Conditions::AddTopics(std::string_view column, const std::vector<std::string>& topics) {
  if (topics.empty()) return;
  std::vector<std::string> exact;
  std::vector<std::string> alternatives;
  for (const std::string& topic : SortedUnique(topics)) {
    if (!IsPrefixPattern(topic)) {
      exact.push_back(topic);
      continue;
    }
    // "door.*" is every topic in ["door.", "door/"): '/' follows '.' in
    // byte order, and the columns compare bytes.
    std::string low = topic.substr(0, topic.size() - 1);
    std::string high = low;
    high.back() = '/';
    alternatives.push_back(absl::StrCat("(", std::string(column), " >= ", Bind(low), " AND ",
                                        std::string(column), " < ", Bind(high), ")"));
  }
  if (!exact.empty()) {
    Conditions in(query_);
    in.AddIn(column, exact);
    alternatives.insert(alternatives.begin(), std::move(in.parts_.front()));
  }
  if (alternatives.size() == 1) {
    parts_.push_back(std::move(alternatives.front()));
    return;
  }
  std::string out = "(";
  for (size_t i = 0; i < alternatives.size(); ++i) {
    if (i > 0) out += " OR ";
    out += alternatives[i];
  }
  out += ")";
  parts_.push_back(std::move(out));
}

void Conditions::AddFilter(const EventFilter& filter, bool by_day) {
  if (filter.start_ms) {
    parts_.push_back(by_day ? absl::StrCat(kStartDay, Bind(timeutil::DayOf(*filter.start_ms)))
                            : absl::StrCat(kStartTime, Bind(*filter.start_ms)));
  }
  if (filter.end_ms) {
    parts_.push_back(by_day ? absl::StrCat(kEndDay, Bind(timeutil::DayOf(*filter.end_ms)))
                            : absl::StrCat(kEndTime, Bind(*filter.end_ms)));
  }
  AddTopics(kTopic, filter.topics);
  if (!filter.family.empty()) parts_.push_back(absl::StrCat(kFamilyEquals, Bind(filter.family)));
  AddIn(kPanel, filter.panel_ids);
  // The rollups key a 2.0 event's door by its device id too (see pg_count.h).
  AddNumberOrText(kDoor, filter.door_ids, kDevice, filter.device_ids);
  if (!by_day) {
    AddNumberOrText(kPerson, filter.person_ids, kHolder, filter.holder_ids);
    AddIn(kOu, filter.ou_ids);
  }
}

void Conditions::AddCursor(const Cursor& after, bool descending) {
  parts_.push_back(absl::StrCat("(occur_time, sequence) ", descending ? "<" : ">", " (",
                                Bind(after.occur_time_ms), ", ", Bind(after.sequence), ")"));
}

std::string Conditions::Where() const {
  std::string out;
  for (size_t i = 0; i < parts_.size(); ++i) {
    out += i == 0 ? " WHERE " : " AND ";
    out += parts_[i];
  }
  return out;
}

Query BuildList(const ListQuery& query, int64_t limit) {
  // The cursor is folded into the time bounds too, so partitions wholly
  // before it are pruned and every index seek starts at it.
  EventFilter filter = query.filter;
  if (query.after) {
    if (query.descending) {
      if (query.after->occur_time_ms < INT64_MAX) {
        const int64_t end = query.after->occur_time_ms + 1;
        filter.end_ms = filter.end_ms ? std::min(*filter.end_ms, end) : end;
      }
    } else {
      const int64_t start = query.after->occur_time_ms;
      filter.start_ms = filter.start_ms ? std::max(*filter.start_ms, start) : start;
    }
  }

  // One field with several values is split into merged arms, one per value.
  enum class Split {
    kNone, kTopic, kDoor, kPerson, kPanel, kDevice, kHolder
  } split = Split::kNone;
  const std::vector<std::string> topics = SortedUnique(filter.topics);
  const bool any_prefix = std::any_of(topics.begin(), topics.end(),
                                      [](const std::string& t) { return IsPrefixPattern(t); });
  const std::vector<int64_t> doors = SortedUnique(filter.door_ids);
  const std::vector<int64_t> people = SortedUnique(filter.person_ids);
  const std::vector<std::string> panels = SortedUnique(filter.panel_ids);
  const size_t all_values = topics.size() + doors.size() + people.size() + panels.size() +
                            filter.ou_ids.size() + filter.device_ids.size() +
                            filter.holder_ids.size();
  size_t arms = 1;
  auto consider = [&](Split field, size_t values) {
    if (split != Split::kNone || values <= 1 || values > kMaxMergedArms) return;
    if (values * (all_values - values) > kMaxRepeatedArmValues) return;
    split = field;
    arms = values;
  };
  if (!any_prefix) consider(Split::kTopic, topics.size());
  // An arm per door would lose the devices OR-ed with the doors (likewise
  // persons and holders).
  if (filter.device_ids.empty()) consider(Split::kDoor, doors.size());
  if (filter.holder_ids.empty()) consider(Split::kPerson, people.size());
  consider(Split::kPanel, panels.size());
  // 2.0's ids alike, when no number is OR-ed with them.
  const std::vector<std::string> devices = SortedUnique(filter.device_ids);
  const std::vector<std::string> holders = SortedUnique(filter.holder_ids);
  if (doors.empty()) consider(Split::kDevice, devices.size());
  if (people.empty()) consider(Split::kHolder, holders.size());
  if (split == Split::kDevice) filter.device_ids.clear();
  if (split == Split::kHolder) filter.holder_ids.clear();
  if (split == Split::kTopic) filter.topics.clear();
  if (split == Split::kDoor) filter.door_ids.clear();
  if (split == Split::kPerson) filter.person_ids.clear();
  if (split == Split::kPanel) filter.panel_ids.clear();

  Query out;
  out.params.Int(limit);
  const int limit_param = out.params.size();
  for (size_t arm = 0; arm < arms; ++arm) {
    Conditions conditions(out);
    conditions.AddFilter(filter);
    switch (split) {
      case Split::kNone:
        break;
      case Split::kTopic:
        conditions.AddIn(kTopic, std::vector<std::string>{topics[arm]});
        break;
      case Split::kDoor:
        conditions.AddIn(kDoor, std::vector<int64_t>{doors[arm]});
        break;
      case Split::kPerson:
        conditions.AddIn(kPerson, std::vector<int64_t>{people[arm]});
        break;
      case Split::kPanel:
        conditions.AddIn(kPanel, std::vector<std::string>{panels[arm]});
        break;
      case Split::kDevice:
        conditions.AddIn(kDevice, std::vector<std::string>{devices[arm]});
        break;
      case Split::kHolder:
        conditions.AddIn(kHolder, std::vector<std::string>{holders[arm]});
        break;
    }
    if (query.after) conditions.AddCursor(*query.after, query.descending);
    if (arms == 1) {
      out.sql += SelectRows(query.with_raw);
      out.sql += conditions.Where();
      break;
    }
    // Each arm ordered and limited on its own, so the planner merges them
    // (a Merge Append of Limits) rather than sorting every match.
    if (arm > 0) out.sql += kUnionAll;
    out.sql += "(";
    out.sql += SelectRows(query.with_raw);
    out.sql += conditions.Where();
    out.sql += absl::StrCat(query.descending ? kOrderDescending : kOrderAscending, "$",
                            limit_param, ")");
  }
  out.sql += absl::StrCat(query.descending ? kOrderDescending : kOrderAscending, "$",
                          limit_param);
  return out;
}

Query RowBySequence(int64_t sequence) {
  Query out;
  out.params.Int(sequence);
  out.sql = SelectRows(/*with_raw=*/true) + " WHERE sequence = $1";
  return out;
}

Query RowsAfterSequence(const EventFilter& filter, int64_t after, int64_t through,
                        int64_t limit) {
  // archive_state and the rows in one statement, so one snapshot: every
  // sequence up to last_sequence is committed and visible in it (the
  // writer commits them in sequence order).
  Query out;
  Conditions conditions(out);
  conditions.AddFilter(filter);
  out.params.Int(after);
  const int after_param = out.params.size();
  out.params.Int(through);
  conditions.Add(absl::StrCat("sequence > $", after_param,
                              " AND sequence <= LEAST(s.last_sequence, $", out.params.size(), ")"));
  out.params.Int(limit);
  out.sql = absl::StrCat(
      "SELECT s.last_sequence, e.* FROM (SELECT last_sequence FROM archive_state WHERE id = 1) s "
      "LEFT JOIN LATERAL (",
      SelectRows(/*with_raw=*/true), conditions.Where(), " ORDER BY sequence LIMIT $",
      out.params.size(), ") e ON true");
  return out;
}

int64_t BinaryInt(const Result& result, int row, int column) {
  return BinaryOptionalInt(result, row, column).value_or(0);
}

std::optional<int64_t> BinaryOptionalInt(const Result& result, int row, int column) {
  if (result.is_null(row, column)) return std::nullopt;
  const std::string_view bytes = result.bytes(row, column);
  // Network byte order, 8 bytes for int8, 4 for int4.
  uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  if (bytes.size() == 4) return static_cast<int64_t>(static_cast<int32_t>(value));
  return static_cast<int64_t>(value);
}

void DecodeRow(const Result& result, int row, int first, bool with_raw, EventView& view) {
  view.sequence = BinaryInt(result, row, first + kSequence);
  view.event_id = result.bytes(row, first + kEventId);
  view.topic = result.bytes(row, first + kTopicColumn);
  view.family = result.bytes(row, first + kFamily);
  view.panel_id = result.bytes(row, first + kPanelId);
  view.ou_id = result.bytes(row, first + kOuId);
  view.door_id = BinaryOptionalInt(result, row, first + kDoorId);
  view.door_name = result.bytes(row, first + kDoorName);
  view.person_id = BinaryOptionalInt(result, row, first + kPersonId);
  view.actor_user_id = result.bytes(row, first + kActorUserId);
  view.occur_time_ms = BinaryInt(result, row, first + kOccurTime);
  view.receive_time_ms = BinaryInt(result, row, first + kReceiveTime);
  view.subscription = result.bytes(row, first + kSubscription);
  // NULL (a 1.0 row) reads as "".
  int column = first + kDeviceId;
  for (std::string_view* text : {&view.device_id, &view.holder_id, &view.holder_name,
                                 &view.cloud_node_id, &view.system_id}) {
    *text = result.is_null(row, column) ? std::string_view() : result.bytes(row, column);
    ++column;
  }
  view.raw = with_raw ? result.bytes(row, first + kRawColumn) : std::string_view();
}

void DecodeRow(const Result& result, int row, int first, bool with_raw, EventRow& out) {
  EventView view;
  DecodeRow(result, row, first, with_raw, view);
  out.sequence = view.sequence;
  out.event_id = view.event_id;
  out.topic = view.topic;
  out.family = view.family;
  out.panel_id = view.panel_id;
  out.ou_id = view.ou_id;
  out.door_id = view.door_id;
  out.door_name = view.door_name;
  out.person_id = view.person_id;
  out.actor_user_id = view.actor_user_id;
  out.occur_time_ms = view.occur_time_ms;
  out.receive_time_ms = view.receive_time_ms;
  out.subscription = view.subscription;
  out.device_id = view.device_id;
  out.holder_id = view.holder_id;
  out.holder_name = view.holder_name;
  out.cloud_node_id = view.cloud_node_id;
  out.system_id = view.system_id;
  out.dedupe_key.clear();
  out.raw = view.raw;
  out.packed_raw.reset();
}

}  // namespace pdkarchive::store::pg
