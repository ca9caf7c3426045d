// The one column list every row read selects, and the one decoder that reads
// it into an EventView or an EventRow. Internal to store/sqlite/.
#ifndef PDKARCHIVE_STORE_SQLITE_ROW_DECODER_H_
#define PDKARCHIVE_STORE_SQLITE_ROW_DECODER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "store/event.h"
#include "store/sqlite/event_reader.h"
#include "store/sqlite/read_statement.h"

namespace pdkarchive::store {
class RawDecompressor;
}

namespace pdkarchive::store::sqlite {

class NameCache;

// The columns of one event row, from `events` joined with `topics` (which
// gives `name` and `family`), in the order RowDecoder reads them.
inline constexpr char kRowColumns[] =
    "sequence, event_id, name, family, panel_ref, ou_id, door_id, door_name_ref, person_id, "
    "actor_user_id, occur_time, receive_time, subscription_ref, dedupe_key, raw, device_id, "
    "holder_id, holder_name, cloud_node_id, system_id";

// Reads the current row of a statement that selects kRowColumns, resolving
// name numbers through `names` and unpacking the stored event id and payload
// (store/raw_codec.h). Both must outlive the decoder. One decoder per read,
// on one thread.
class RowDecoder {
 public:
  RowDecoder(NameCache& names, const RawDecompressor& decompressor)
      : names_(names), decompressor_(decompressor) {}
  RowDecoder(const RowDecoder&) = delete;
  RowDecoder& operator=(const RowDecoder&) = delete;

  // Sets `view` (without copies) to the row; its text is valid until the
  // next Decode or step. `view.raw` is left empty unless `with_raw`.
  // DataLoss when a payload or name cannot be read back.
  absl::Status Decode(const Statement& statement, bool with_raw, EventView& view);

  // The same row copied into `row` (its dedupe key left empty).
  absl::Status Decode(const Statement& statement, bool with_raw, EventRow& row);

 private:
  NameCache& names_;
  const RawDecompressor& decompressor_;
  // What a view points into beyond the statement's own cells: the unpacked
  // event id and payload, and the names.
  std::string event_id_;
  std::string raw_;
  std::shared_ptr<const std::string> names_held_[3];
  EventView view_;
};

}  // namespace pdkarchive::store::sqlite

#endif  // PDKARCHIVE_STORE_SQLITE_ROW_DECODER_H_
