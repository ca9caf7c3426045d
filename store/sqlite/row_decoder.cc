#include "store/sqlite/row_decoder.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "store/raw_codec.h"
#include "store/sqlite/name_cache.h"

namespace pdkarchive::store::sqlite {
namespace {

// Positions in kRowColumns.
constexpr int kSequence = 0;
constexpr int kEventId = 1;
constexpr int kTopic = 2;
constexpr int kFamily = 3;
constexpr int kPanelRef = 4;  // a number of a `names` row, as are the other refs
constexpr int kOuId = 5;
constexpr int kDoorId = 6;
constexpr int kDoorNameRef = 7;
constexpr int kPersonId = 8;
constexpr int kActorUserId = 9;
constexpr int kOccurTime = 10;
constexpr int kReceiveTime = 11;
constexpr int kSubscriptionRef = 12;
constexpr int kRaw = 14;
constexpr int kDeviceId = 15;  // then holder_id, holder_name, cloud_node_id, system_id

}  // namespace

absl::Status RowDecoder::Decode(const Statement& statement, bool with_raw, EventView& view) {
  view.sequence = statement.Int(kSequence);
  if (statement.IsBlob(kEventId)) {
    event_id_ = UnpackUuid(statement.Bytes(kEventId));
    view.event_id = event_id_;
  } else {
    view.event_id = statement.Bytes(kEventId);
  }
  view.topic = statement.Bytes(kTopic);
  view.family = statement.Bytes(kFamily);
  view.ou_id = statement.Bytes(kOuId);
  view.door_id = statement.OptionalInt(kDoorId);
  view.person_id = statement.OptionalInt(kPersonId);
  view.actor_user_id = statement.Bytes(kActorUserId);
  view.occur_time_ms = statement.Int(kOccurTime);
  view.receive_time_ms = statement.Int(kReceiveTime);
  // NULL (a 1.0 row) reads as "".
  int text_column = kDeviceId;
  for (std::string_view* text : {&view.device_id, &view.holder_id, &view.holder_name,
                                 &view.cloud_node_id, &view.system_id}) {
    *text = statement.Bytes(text_column++);
  }
  int held = 0;
  for (auto [column, text] : {std::pair{kPanelRef, &view.panel_id},
                              std::pair{kDoorNameRef, &view.door_name},
                              std::pair{kSubscriptionRef, &view.subscription}}) {
    absl::StatusOr<std::shared_ptr<const std::string>> name =
        names_.Get(statement.db(), statement.Int(column));
    if (!name.ok()) return name.status();
    names_held_[held] = *std::move(name);
    *text = *names_held_[held++];
  }
  view.raw = {};
  if (!with_raw) return absl::OkStatus();
  if (!statement.IsBlob(kRaw)) {
    view.raw = statement.Bytes(kRaw);
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> text = decompressor_.Decompress(statement.Bytes(kRaw));
  if (!text.ok()) {
    return absl::DataLossError(
        absl::StrCat("event ", view.sequence, ": ", text.status().message()));
  }
  raw_ = *std::move(text);
  view.raw = raw_;
  return absl::OkStatus();
}

absl::Status RowDecoder::Decode(const Statement& statement, bool with_raw, EventRow& row) {
  if (absl::Status s = Decode(statement, with_raw, view_); !s.ok()) return s;
  row.sequence = view_.sequence;
  // Text unpacked into the decoder's own buffers moves rather than copies.
  if (view_.event_id.data() == event_id_.data()) {
    row.event_id = std::move(event_id_);
  } else {
    row.event_id = std::string(view_.event_id);
  }
  row.topic = std::string(view_.topic);
  row.family = std::string(view_.family);
  row.panel_id = std::string(view_.panel_id);
  row.ou_id = std::string(view_.ou_id);
  row.door_id = view_.door_id;
  row.door_name = std::string(view_.door_name);
  row.person_id = view_.person_id;
  row.actor_user_id = std::string(view_.actor_user_id);
  row.occur_time_ms = view_.occur_time_ms;
  row.receive_time_ms = view_.receive_time_ms;
  row.subscription = std::string(view_.subscription);
  row.device_id = std::string(view_.device_id);
  row.holder_id = std::string(view_.holder_id);
  row.holder_name = std::string(view_.holder_name);
  row.cloud_node_id = std::string(view_.cloud_node_id);
  row.system_id = std::string(view_.system_id);
  if (!view_.raw.empty() && view_.raw.data() == raw_.data()) {
    row.raw = std::move(raw_);
  } else {
    row.raw = std::string(view_.raw);
  }
  view_ = EventView();
  return absl::OkStatus();
}

}  // namespace pdkarchive::store::sqlite
