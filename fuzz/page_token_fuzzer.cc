// Fuzzes query::PageTokenCodec. The input gives a filter, an order, a
// position and a candidate token. Arbitrary text must decode to an
// InvalidArgument (or, being the bytes of a real token, to the position they
// were made for);
// a token the codec makes must decode to its position, under the same
// filter written in another value order, and nowhere else: not with the
// other order, another filter, another key, one character changed, or cut.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "fuzz/fuzz_support.h"
#include "query/page_token.h"
#include "store/event.h"

namespace {

using pdkarchive::fuzz::FuzzInput;
using pdkarchive::query::FilterFingerprint;
using pdkarchive::query::PageTokenCodec;
namespace store = pdkarchive::store;

constexpr char kMalformed[] = "page_token is malformed";
constexpr char kMismatch[] = "page_token does not match this filter/order";

store::EventFilter ConsumeFilter(FuzzInput& in) {
  store::EventFilter filter;
  const uint8_t present = in.Byte();
  if (present & 1) filter.start_ms = in.Int64();
  if (present & 2) filter.end_ms = in.Int64();
  for (int n = in.Byte() % 4; n > 0; --n) filter.topics.push_back(in.String(64));
  for (int n = in.Byte() % 4; n > 0; --n) filter.panel_ids.push_back(in.String(64));
  for (int n = in.Byte() % 4; n > 0; --n) filter.door_ids.push_back(in.Int64());
  for (int n = in.Byte() % 4; n > 0; --n) filter.person_ids.push_back(in.Int64());
  for (int n = in.Byte() % 4; n > 0; --n) filter.ou_ids.push_back(in.String(64));
  filter.family = in.String(16);
  for (int n = in.Byte() % 4; n > 0; --n) filter.device_ids.push_back(in.String(64));
  for (int n = in.Byte() % 4; n > 0; --n) filter.holder_ids.push_back(in.String(64));
  return filter;
}

// The same selection written differently: values reversed and repeated.
store::EventFilter Reordered(store::EventFilter filter) {
  auto shuffle = [](auto& values) {
    std::reverse(values.begin(), values.end());
    if (!values.empty()) values.push_back(values.front());
  };
  shuffle(filter.topics);
  shuffle(filter.panel_ids);
  shuffle(filter.door_ids);
  shuffle(filter.person_ids);
  shuffle(filter.ou_ids);
  shuffle(filter.device_ids);
  shuffle(filter.holder_ids);
  return filter;
}

bool Refused(const absl::StatusOr<store::Cursor>& result, const char* message) {
  return !result.ok() && absl::IsInvalidArgument(result.status()) &&
         result.status().message() == message;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const store::EventFilter filter = ConsumeFilter(in);
  const bool descending = in.Bool();
  store::Cursor position;
  position.occur_time_ms = in.Int64();
  position.sequence = in.Int64();
  const std::string candidate = in.Rest();

  const PageTokenCodec codec("fuzz-page-token-key-0123456789abcdef");

  auto decoded = codec.Decode(candidate, filter, descending);
  if (decoded.ok()) {
    // Base64 decoding skips whitespace, so the text may differ from what
    // Encode makes, but never the bytes: those carry the signature.
    std::string candidate_bytes;
    std::string canonical_bytes;
    FUZZ_CHECK(absl::WebSafeBase64Unescape(candidate, &candidate_bytes) &&
                   absl::WebSafeBase64Unescape(codec.Encode(filter, descending, *decoded),
                                               &canonical_bytes) &&
                   candidate_bytes == canonical_bytes,
               "a token the codec did not make was accepted");
  } else {
    FUZZ_CHECK(Refused(decoded, kMalformed) || Refused(decoded, kMismatch),
               decoded.status().ToString());
  }

  const std::string token = codec.Encode(filter, descending, position);
  auto back = codec.Decode(token, filter, descending);
  FUZZ_CHECK(back.ok() && *back == position, "round trip lost the position");
  const store::EventFilter reordered = Reordered(filter);
  FUZZ_CHECK(FilterFingerprint(reordered) == FilterFingerprint(filter),
             "value order changed the fingerprint");
  auto same = codec.Decode(token, reordered, descending);
  FUZZ_CHECK(same.ok() && *same == position, "reordered filter refused");

  FUZZ_CHECK(Refused(codec.Decode(token, filter, !descending), kMismatch),
             "token accepted for the other order");
  store::EventFilter other = filter;
  other.family += "x";
  FUZZ_CHECK(Refused(codec.Decode(token, other, descending), kMismatch),
             "token accepted for another filter");
  FUZZ_CHECK(Refused(PageTokenCodec("another key").Decode(token, filter, descending),
                     kMalformed),
             "token accepted under another key");
  std::string changed = token;
  char& c = changed[static_cast<size_t>(position.sequence & 0x7fff) % changed.size()];
  c = c == 'A' ? 'B' : 'A';
  FUZZ_CHECK(Refused(codec.Decode(changed, filter, descending), kMalformed),
             "token with a changed character accepted");
  FUZZ_CHECK(Refused(codec.Decode(token.substr(0, token.size() - 1), filter, descending),
                     kMalformed),
             "truncated token accepted");
  return 0;
}
