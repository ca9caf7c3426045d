// Fuzzes ingest::Normalize with arbitrary bodies (read with both PDK API
// versions' catalogs), and timeutil::ParseRfc3339Ms
// with the same bytes. Beyond "no crash, no sanitizer report": an accepted
// body keeps its bytes as `raw`, gets a known family, text fields that are
// well-formed UTF-8 (whatever escapes the body used), a 16-byte dedupe key
// that matches DedupeKey, an occur time within the years 0001-9999 (or the
// receive time), and normalizes to the same row again; a refusal is
// InvalidArgument with a reason. A parsed time formats back to itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fuzz/fuzz_support.h"
#include "ingest/catalog.h"
#include "ingest/normalizer.h"
#include "store/family.h"
#include "store/utf8.h"
#include "timeutil/time_util.h"

namespace {

using pdkarchive::ingest::DedupeKey;
using pdkarchive::ingest::IsKnownTopic;
using pdkarchive::ingest::Normalize;
using pdkarchive::timeutil::kMaxTimeMs;
using pdkarchive::timeutil::kMinTimeMs;
using pdkarchive::timeutil::ParseRfc3339Ms;

constexpr int64_t kReceiveMs = 1646922708300;

void CheckNormalize(std::string_view body, int api) {
  auto result = Normalize(body, kReceiveMs, "default", api);
  if (!result.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(result.status()), result.status().ToString());
    FUZZ_CHECK(!result.status().message().empty(), "refusal without a reason");
    return;
  }
  const auto& row = result->row;
  FUZZ_CHECK(row.raw == body, "raw differs from the body");
  FUZZ_CHECK(!row.topic.empty(), "accepted without a topic");
  FUZZ_CHECK(result->known_topic == IsKnownTopic(row.topic, api), row.topic);
  if (result->known_topic) {
    const auto family = pdkarchive::store::ParseFamily(row.family);
    FUZZ_CHECK(family && pdkarchive::store::FamilyOfApi(*family, api),
               row.family);
  } else {
    FUZZ_CHECK(row.family == "unknown", row.family);
  }
  FUZZ_CHECK(row.sequence == 0, "sequence set before appending");
  FUZZ_CHECK(row.receive_time_ms == kReceiveMs, "receive time changed");
  FUZZ_CHECK(row.occur_time_ms == kReceiveMs ||
                 (row.occur_time_ms >= kMinTimeMs && row.occur_time_ms <= kMaxTimeMs),
             std::to_string(row.occur_time_ms));
  FUZZ_CHECK(row.subscription == "default", row.subscription);
  for (const std::string* text :
       {&row.topic, &row.event_id, &row.panel_id, &row.ou_id, &row.door_name,
        &row.actor_user_id, &row.device_id, &row.holder_id, &row.holder_name,
        &row.cloud_node_id, &row.system_id}) {
    FUZZ_CHECK(pdkarchive::store::IsValidUtf8(*text),
               "a text field is not UTF-8");
  }
  FUZZ_CHECK(row.dedupe_key.size() == 16, "dedupe key not 16 bytes");
  FUZZ_CHECK(row.dedupe_key == DedupeKey(row.topic, row.panel_id, row.event_id, body),
             "dedupe key differs from DedupeKey");
  FUZZ_CHECK(result->unreadable_fields >= 0, "negative unreadable count");
  if (api == 1) {
    FUZZ_CHECK(row.device_id.empty() && row.holder_id.empty() &&
                   row.holder_name.empty() && row.cloud_node_id.empty() &&
                   row.system_id.empty(),
               "a 1.0 row with 2.0 ids");
  }
  auto again = Normalize(body, kReceiveMs, "default", api);
  FUZZ_CHECK(again.ok() && again->row == row, "normalizing twice differs");
}

void CheckIsoTime(std::string_view text) {
  auto ms = ParseRfc3339Ms(text);
  if (!ms.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(ms.status()), ms.status().ToString());
    return;
  }
  FUZZ_CHECK(*ms >= kMinTimeMs && *ms <= kMaxTimeMs, std::to_string(*ms));
  const std::string canonical = absl::FormatTime(
      "%E4Y-%m-%d%ET%H:%M:%E3SZ", absl::FromUnixMillis(*ms), absl::UTCTimeZone());
  auto back = ParseRfc3339Ms(canonical);
  FUZZ_CHECK(back.ok() && *back == *ms, canonical);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckNormalize(bytes, 1);
  CheckNormalize(bytes, 2);
  CheckIsoTime(bytes);
  return 0;
}
