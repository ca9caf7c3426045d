// Fuzzes ingest::RequestFramer, the HTTP/1.1 request framing of the ingest
// port, with small limits (8 header fields, a 512-byte head, a 1 KiB body).
//
// Input: one byte that picks how the rest is cut into reads (1-255 bytes
// each, varying), then the bytes a client sends on one connection.
// Properties: the requests and refusals do not depend on how the bytes were
// cut (except for the interim 100s, which depend on whether a body had
// already arrived); no request has more header fields, or a longer body,
// than the limits; a body left unread was declared over the limit; a
// refusal is one of 400, 417, 431, 501, 505, and nothing follows it or a
// request that ends the connection.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "ingest/request_framer.h"

namespace {

using pdkarchive::ingest::FramingEvent;
using pdkarchive::ingest::FramingLimits;
using pdkarchive::ingest::RequestFramer;

constexpr FramingLimits kLimits{.max_header_count = 8,
                                .max_header_bytes = 512,
                                .max_body_bytes = 1024};

// A canonical rendering of every event but the interim 100s.
std::vector<std::string> Frame(std::string_view stream, uint8_t cut) {
  RequestFramer framer(kLimits);
  std::vector<std::string> events;
  bool ended = false;
  size_t step = cut == 0 ? stream.size() : cut;
  size_t pos = 0;
  while (true) {
    const size_t n = std::min(step, stream.size() - pos);
    framer.Feed(stream.substr(pos, n));
    pos += n;
    for (;;) {
      FramingEvent event = framer.Next();
      if (event.kind == FramingEvent::Kind::kNeedMore) break;
      FUZZ_CHECK(!ended, "an event after the connection ended");
      if (event.kind == FramingEvent::Kind::kContinue) continue;
      if (event.kind == FramingEvent::Kind::kRefusal) {
        FUZZ_CHECK(event.status == 400 || event.status == 417 || event.status == 431 ||
                       event.status == 501 || event.status == 505,
                   std::to_string(event.status));
        FUZZ_CHECK(!event.reason.empty(), "a refusal without a reason");
        ended = true;
        events.push_back(absl::StrCat("refusal ", event.status, " ", event.reason));
        continue;
      }
      const auto& r = event.request;
      FUZZ_CHECK(r.headers.size() <= kLimits.max_header_count,
                 std::to_string(r.headers.size()));
      FUZZ_CHECK(r.body.size() <= kLimits.max_body_bytes, std::to_string(r.body.size()));
      if (r.unread_body_bytes) {
        FUZZ_CHECK(*r.unread_body_bytes > kLimits.max_body_bytes && r.body.empty(),
                   std::to_string(*r.unread_body_bytes));
        FUZZ_CHECK(!event.keep_alive, "an unread body keeps the connection");
      }
      if (!event.keep_alive) ended = true;
      std::string rendered = absl::StrCat("request ", r.method, " ", r.path, " ",
                                          event.http11, event.keep_alive, " ",
                                          r.unread_body_bytes.value_or(0), "\n");
      for (const auto& [name, value] : r.headers) {
        absl::StrAppend(&rendered, name, ": ", value, "\n");
      }
      absl::StrAppend(&rendered, r.body);
      events.push_back(std::move(rendered));
    }
    if (pos == stream.size()) break;
    // Vary the cut so reads of every size meet every boundary.
    step = 1 + (step * 7 + 3) % (cut == 0 ? 1 : cut);
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t cut = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<std::string> whole = Frame(stream, 0);
  const std::vector<std::string> pieces = Frame(stream, cut);
  if (whole != pieces) {
    std::string diff;
    for (size_t i = 0; i < std::max(whole.size(), pieces.size()); ++i) {
      absl::StrAppend(&diff, "\n#", i, " at once: ", i < whole.size() ? whole[i] : "-",
                      "\n#", i, " in reads: ", i < pieces.size() ? pieces[i] : "-");
    }
    FUZZ_CHECK(false, absl::StrCat("reads of up to ", cut, " bytes frame differently:", diff));
  }
  return 0;
}
