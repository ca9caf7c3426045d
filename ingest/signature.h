// Proof that a delivery came from PDK: X-PDK-SIGNATURE is the hex
// HMAC-SHA1 of the raw body under the subscription's secret.
#ifndef PDKARCHIVE_INGEST_SIGNATURE_H_
#define PDKARCHIVE_INGEST_SIGNATURE_H_

#include <string>
#include <string_view>

namespace pdkarchive::ingest {

// Lower-case hex HMAC-SHA1 of `body` under `secret` (40 characters; empty
// only if OpenSSL itself fails).
std::string HmacSha1Hex(std::string_view secret, std::string_view body);

// True when `signature_hex` (hex, either case, surrounding spaces ignored) is
// the HMAC-SHA1 of `body` under `secret`. Runs in time independent of where
// the signatures differ.
bool VerifySignature(std::string_view secret, std::string_view body,
                     std::string_view signature_hex);

}  // namespace pdkarchive::ingest

#endif  // PDKARCHIVE_INGEST_SIGNATURE_H_
