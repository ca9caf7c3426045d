// UTF-8 well-formedness for text that leaves the archive. Protobuf `string`
// fields refuse anything else, and the CSV export promises UTF-8, so every
// text value on its way out passes through here: the normalizer before a row
// is stored, the query layer for rows an older version may have stored.
// Well-formed means RFC 3629 / Unicode Table 3-7: no overlong forms, no
// surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated or stray
// bytes. Pure functions; thread-safe.
#ifndef PDKARCHIVE_STORE_UTF8_H_
#define PDKARCHIVE_STORE_UTF8_H_

#include <string>
#include <string_view>

namespace pdkarchive::store {

// True when `text` is well-formed UTF-8. Runs of ASCII are checked eight
// bytes a step, so the common case costs little more than a memchr.
bool IsValidUtf8(std::string_view text);

// `text` with each ill-formed sequence replaced by U+FFFD: one replacement
// per maximal subpart (Unicode 15 §3.9, the WHATWG Encoding Standard's
// decoder), so "\xED\xA0\x80" (a CESU-8 surrogate) becomes three and a
// truncated "\xE2\x82" one. Well-formed text comes back unchanged.
std::string SanitizeUtf8(std::string_view text);

// Replaces `*text` with SanitizeUtf8(*text) when it is ill-formed and
// returns true; otherwise leaves it untouched (no copy) and returns false.
bool SanitizeUtf8InPlace(std::string* text);

}  // namespace pdkarchive::store

#endif  // PDKARCHIVE_STORE_UTF8_H_
