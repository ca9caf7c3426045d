#include "query/convert.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "store/family.h"
#include "store/utf8.h"
#include "timeutil/time_util.h"

namespace pdkarchive::query {
namespace {

namespace pb = ::pdk::archive::v1;

// The range google.protobuf.Timestamp allows: 0001-01-01 to 9999-12-31.
constexpr int64_t kMinSeconds = timeutil::kMinTimeMs / 1000;
constexpr int64_t kMaxSeconds = timeutil::kMaxTimeMs / 1000;

// Sets a protobuf `string` field: `value` when it is well-formed UTF-8 (the
// usual case: one scan, one copy), else a repaired copy.
void SetText(const std::string& value, std::string* field) {
  if (store::IsValidUtf8(value)) {
    *field = value;
  } else {
    *field = store::SanitizeUtf8(value);
  }
}

bool ValidTimestamp(const google::protobuf::Timestamp& t) {
  return t.seconds() >= kMinSeconds && t.seconds() <= kMaxSeconds &&
         t.nanos() >= 0 && t.nanos() <= 999999999;
}

// The smallest whole millisecond at or after `t`: both bounds compare
// occur_time (whole ms) against an instant, inclusive start and exclusive
// end alike round up.
int64_t CeilMillis(const google::protobuf::Timestamp& t) {
  int64_t ms = t.seconds() * 1000 + t.nanos() / 1000000;
  if (t.nanos() % 1000000 != 0) ++ms;
  return ms;
}

bool TimestampLess(const google::protobuf::Timestamp& a,
                   const google::protobuf::Timestamp& b) {
  return a.seconds() != b.seconds() ? a.seconds() < b.seconds()
                                    : a.nanos() < b.nanos();
}

absl::Status CheckTopic(const std::string& topic, int index) {
  if (topic.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter.topics[", index, "] is empty"));
  }
  const size_t star = topic.find('*');
  if (star == std::string::npos) return absl::OkStatus();
  const bool trailing_prefix = star == topic.size() - 1 && topic.size() >= 3 &&
                               topic[topic.size() - 2] == '.';
  if (!trailing_prefix) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter.topics[", index, "] \"", topic,
        "\": '*' is only allowed as a trailing \".*\" after a prefix, "
        "as in \"door.*\""));
  }
  return absl::OkStatus();
}

template <typename Repeated>
absl::Status CheckCount(const Repeated& values, const char* field) {
  if (values.size() > kMaxFilterValues) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter.", field, " has more than ", kMaxFilterValues, " values"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<store::EventFilter> FilterFromProto(
    const pb::EventFilter& proto) {
  store::EventFilter filter;
  if (proto.has_start_time()) {
    if (!ValidTimestamp(proto.start_time())) {
      return absl::InvalidArgumentError(
          "filter.start_time is not a valid timestamp");
    }
    filter.start_ms = CeilMillis(proto.start_time());
  }
  if (proto.has_end_time()) {
    if (!ValidTimestamp(proto.end_time())) {
      return absl::InvalidArgumentError(
          "filter.end_time is not a valid timestamp");
    }
    filter.end_ms = CeilMillis(proto.end_time());
  }
  if (proto.has_start_time() && proto.has_end_time() &&
      !TimestampLess(proto.start_time(), proto.end_time())) {
    return absl::InvalidArgumentError(
        "filter.start_time must be before filter.end_time");
  }
  for (absl::Status status : {CheckCount(proto.topics(), "topics"),
                              CheckCount(proto.panel_ids(), "panel_ids"),
                              CheckCount(proto.door_ids(), "door_ids"),
                              CheckCount(proto.person_ids(), "person_ids"),
                              CheckCount(proto.ou_ids(), "ou_ids"),
                              CheckCount(proto.device_ids(), "device_ids"),
                              CheckCount(proto.holder_ids(), "holder_ids")}) {
    if (!status.ok()) return status;
  }
  for (int i = 0; i < proto.topics_size(); ++i) {
    if (absl::Status status = CheckTopic(proto.topics(i), i); !status.ok()) {
      return status;
    }
  }
  const std::string& family = proto.family();
  if (!family.empty() && !store::ParseFamily(family)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter.family \"", family,
        "\" is not one of \"org\", \"panel\", \"unknown\" or \"\""));
  }
  filter.topics.assign(proto.topics().begin(), proto.topics().end());
  filter.panel_ids.assign(proto.panel_ids().begin(), proto.panel_ids().end());
  filter.door_ids.assign(proto.door_ids().begin(), proto.door_ids().end());
  filter.person_ids.assign(proto.person_ids().begin(),
                           proto.person_ids().end());
  filter.ou_ids.assign(proto.ou_ids().begin(), proto.ou_ids().end());
  filter.device_ids.assign(proto.device_ids().begin(), proto.device_ids().end());
  filter.holder_ids.assign(proto.holder_ids().begin(), proto.holder_ids().end());
  filter.family = family;
  return filter;
}

absl::StatusOr<std::vector<store::Dimension>> DimensionsFromProto(
    const google::protobuf::RepeatedField<int>& group_by) {
  std::vector<store::Dimension> dimensions;
  std::vector<int> seen;
  for (int i = 0; i < group_by.size(); ++i) {
    const int value = group_by.Get(i);
    store::Dimension dimension;
    switch (value) {
      case pb::DIMENSION_TOPIC:
        dimension = store::Dimension::kTopic;
        break;
      case pb::DIMENSION_PANEL:
        dimension = store::Dimension::kPanel;
        break;
      case pb::DIMENSION_DOOR:
        dimension = store::Dimension::kDoor;
        break;
      case pb::DIMENSION_PERSON:
        dimension = store::Dimension::kPerson;
        break;
      case pb::DIMENSION_HOUR:
        dimension = store::Dimension::kHour;
        break;
      case pb::DIMENSION_DAY:
        dimension = store::Dimension::kDay;
        break;
      case pb::DIMENSION_UNSPECIFIED:
        return absl::InvalidArgumentError(
            absl::StrCat("group_by[", i, "] is DIMENSION_UNSPECIFIED"));
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "group_by[", i, "] is not a known dimension (", value, ")"));
    }
    for (int earlier : seen) {
      if (earlier == value) {
        return absl::InvalidArgumentError(absl::StrCat(
            "group_by[", i, "] repeats ", pb::Dimension_Name(value)));
      }
    }
    seen.push_back(value);
    dimensions.push_back(dimension);
  }
  return dimensions;
}

void MillisToTimestamp(int64_t ms, google::protobuf::Timestamp* out) {
  ms = std::clamp(ms, timeutil::kMinTimeMs, timeutil::kMaxTimeMs);
  int64_t seconds = ms / 1000;
  int64_t millis = ms % 1000;
  if (millis < 0) {
    millis += 1000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(millis * 1000000));
}

void EventToProto(const store::EventRow& row, pb::Event* out) {
  out->set_sequence(row.sequence);
  SetText(row.event_id, out->mutable_event_id());
  SetText(row.topic, out->mutable_topic());
  SetText(row.family, out->mutable_family());
  SetText(row.panel_id, out->mutable_panel_id());
  if (row.door_id) out->set_door_id(*row.door_id);
  if (row.person_id) out->set_person_id(*row.person_id);
  SetText(row.ou_id, out->mutable_ou_id());
  MillisToTimestamp(row.occur_time_ms, out->mutable_occur_time());
  MillisToTimestamp(row.receive_time_ms, out->mutable_receive_time());
  SetText(row.door_name, out->mutable_door_name());
  SetText(row.actor_user_id, out->mutable_actor_user_id());
  SetText(row.subscription, out->mutable_subscription());
  SetText(row.raw, out->mutable_raw());
  SetText(row.device_id, out->mutable_device_id());
  SetText(row.holder_id, out->mutable_holder_id());
  SetText(row.holder_name, out->mutable_holder_name());
  SetText(row.cloud_node_id, out->mutable_cloud_node_id());
  SetText(row.system_id, out->mutable_system_id());
}

void GroupToProto(store::CountGroup&& group, pb::Group* out) {
  for (std::string& key : group.key) {
    store::SanitizeUtf8InPlace(&key);
    out->add_key(std::move(key));
  }
  out->set_count(group.count);
}

}  // namespace pdkarchive::query
