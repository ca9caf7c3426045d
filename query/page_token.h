// Page tokens for ListEvents: opaque, signed positions in (occur_time,
// sequence) order. A token carries the last position returned, the order and
// a fingerprint of the normalized filter, and an HMAC-SHA256 under the
// archive's page_token_key, so a client can neither forge a position nor
// reuse a token with another filter or order.
#ifndef PDKARCHIVE_QUERY_PAGE_TOKEN_H_
#define PDKARCHIVE_QUERY_PAGE_TOKEN_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "store/event.h"

namespace pdkarchive::query {

// Immutable after construction, so thread-safe.
class PageTokenCodec {
 public:
  // `key` is the secret that signs tokens (ArchiveReader::PageTokenKey()).
  explicit PageTokenCodec(std::string key);

  // The token that resumes listing `filter` in the given order after `last`.
  std::string Encode(const store::EventFilter& filter, bool descending,
                     const store::Cursor& last) const;

  // The position in `token`. InvalidArgument "page_token is malformed" when
  // it is garbled or not signed with this key, and "page_token does not match
  // this filter/order" when it was issued for another filter or order.
  absl::StatusOr<store::Cursor> Decode(std::string_view token,
                                       const store::EventFilter& filter,
                                       bool descending) const;

 private:
  std::string key_;
};

// A digest of `filter` that is equal for filters selecting the same events
// by the same criteria: the order of values within a field and repeated
// values do not change it.
std::string FilterFingerprint(const store::EventFilter& filter);

}  // namespace pdkarchive::query

#endif  // PDKARCHIVE_QUERY_PAGE_TOKEN_H_
