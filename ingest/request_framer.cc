#include "ingest/request_framer.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pdkarchive::ingest {
namespace {

// A chunk-size line longer than this (with its extensions) is refused.
constexpr size_t kMaxChunkLine = 1024;
// Bytes already consumed are dropped from the buffer once they are this many.
constexpr size_t kCompactAt = 64 * 1024;

// RFC 9110 §5.6.2 token characters.
bool IsTchar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTchar);
}

// A field value may hold visible characters, SP, HTAB and obs-text, never
// CR, LF, NUL or another control character (RFC 9110 §5.5).
bool IsFieldValue(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// 1*DIGIT, saturating at UINT64_MAX; false when not digits.
bool ParseDecimal(std::string_view s, uint64_t& value) {
  if (s.empty()) return false;
  value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    value = value > (UINT64_MAX - digit) / 10 ? UINT64_MAX : value * 10 + digit;
  }
  return true;
}

// Comma-separated list elements, each trimmed, empty ones dropped.
std::vector<std::string_view> ListElements(std::string_view value) {
  std::vector<std::string_view> out;
  const absl::string_view all(value.data(), value.size());
  for (absl::string_view part : absl::StrSplit(all, ',')) {
    std::string_view element = TrimOws(std::string_view(part.data(), part.size()));
    if (!element.empty()) out.push_back(element);
  }
  return out;
}

}  // namespace

void RequestFramer::Feed(std::string_view bytes) {
  if (state_ == State::kClosed) return;
  Compact();
  buffer_.append(bytes.data(), bytes.size());
}

void RequestFramer::Compact() {
  if (pos_ == 0) return;
  if (pos_ < kCompactAt && pos_ * 2 < buffer_.size()) return;
  buffer_.erase(0, pos_);
  scan_ = scan_ > pos_ ? scan_ - pos_ : 0;
  line_start_ = line_start_ > pos_ ? line_start_ - pos_ : 0;
  pos_ = 0;
}

void RequestFramer::Close() {
  state_ = State::kClosed;
  buffer_.clear();
  buffer_.shrink_to_fit();
  pos_ = 0;
  scan_ = 0;
}

FramingEvent RequestFramer::Refuse(int status, std::string reason) {
  FramingEvent event;
  event.kind = FramingEvent::Kind::kRefusal;
  event.http11 = current_.http11;
  event.keep_alive = false;
  event.status = status;
  event.reason = std::move(reason);
  Close();
  return event;
}

bool RequestFramer::FindLineEnd(size_t& line_end, size_t& next) const {
  const void* nl = std::memchr(buffer_.data() + pos_, '\n', buffer_.size() - pos_);
  if (nl == nullptr) return false;
  const auto at = static_cast<size_t>(static_cast<const char*>(nl) - buffer_.data());
  next = at + 1;
  line_end = (at > pos_ && buffer_[at - 1] == '\r') ? at - 1 : at;
  return true;
}

FramingEvent RequestFramer::Next() {
  for (;;) {
    switch (state_) {
      case State::kClosed:
        return FramingEvent{};
      case State::kIdle: {
        // Empty lines before a request line are ignored (RFC 9112 §2.2).
        while (pos_ < buffer_.size() && (buffer_[pos_] == '\r' || buffer_[pos_] == '\n')) {
          ++pos_;
        }
        if (pos_ == buffer_.size()) return FramingEvent{};
        state_ = State::kHead;
        scan_ = pos_;
        line_start_ = pos_;
        head_lines_ = 0;
        current_ = FramingEvent{};
        content_length_ = 0;
        expect_continue_ = false;
        break;
      }
      case State::kHead: {
        // Only the bytes that arrived since the last call are scanned, and
        // the limits are checked before the head is parsed at all.
        for (;;) {
          const void* nl = std::memchr(buffer_.data() + scan_, '\n', buffer_.size() - scan_);
          if (nl == nullptr) {
            scan_ = buffer_.size();
            if (scan_ - pos_ > limits_.max_header_bytes) {
              return Refuse(431, absl::StrCat("request head exceeds the limit of ",
                                              limits_.max_header_bytes, " bytes"));
            }
            return FramingEvent{};
          }
          const auto at = static_cast<size_t>(static_cast<const char*>(nl) - buffer_.data());
          const size_t line_start = line_start_;
          scan_ = at + 1;
          line_start_ = scan_;
          if (scan_ - pos_ > limits_.max_header_bytes) {
            return Refuse(431, absl::StrCat("request head exceeds the limit of ",
                                            limits_.max_header_bytes, " bytes"));
          }
          const bool empty =
              at == line_start || (at == line_start + 1 && buffer_[line_start] == '\r');
          if (empty) {
            const std::string_view head(buffer_.data() + pos_, line_start - pos_);
            pos_ = scan_;
            FramingEvent event = ParseHead(head);
            if (event.kind != FramingEvent::Kind::kNeedMore) return event;
            break;  // the body, if any, is read in the next state
          }
          if (++head_lines_ > limits_.max_header_count + 1) {
            return Refuse(431, absl::StrCat("request has more than the limit of ",
                                            limits_.max_header_count, " header fields"));
          }
        }
        break;
      }
      case State::kBody: {
        if (buffer_.size() - pos_ < content_length_) return FramingEvent{};
        current_.request.body.assign(buffer_, pos_, static_cast<size_t>(content_length_));
        pos_ += static_cast<size_t>(content_length_);
        return FinishRequest();
      }
      case State::kChunks:
        return ReadChunks();
    }
  }
}

FramingEvent RequestFramer::ParseHead(std::string_view head) {
  std::vector<std::string_view> lines;
  for (absl::string_view line : absl::StrSplit(absl::string_view(head.data(), head.size()), '\n')) {
    std::string_view l(line.data(), line.size());
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back(l);
  }
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the last line end
  if (lines.empty()) return Refuse(400, "empty request line");

  // request-line = method SP request-target SP HTTP-version
  const std::string_view request_line = lines[0];
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Refuse(400, "malformed request line");
  }
  const std::string_view method = request_line.substr(0, sp1);
  const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = request_line.substr(sp2 + 1);
  if (!IsToken(method)) return Refuse(400, "malformed request method");
  if (target.empty() || !IsFieldValue(target) || target.find('\t') != std::string_view::npos) {
    return Refuse(400, "malformed request target");
  }
  if (version == "HTTP/1.1") {
    current_.http11 = true;
  } else if (version == "HTTP/1.0") {
    current_.http11 = false;
  } else if (absl::StartsWith(absl::string_view(version.data(), version.size()), "HTTP/")) {
    return Refuse(505, absl::StrCat("HTTP version ", std::string(version),
                                    " not supported; use HTTP/1.1"));
  } else {
    return Refuse(400, "malformed HTTP version");
  }
  current_.request.method.assign(method);
  current_.request.path.assign(target.substr(0, target.find('?')));

  bool has_content_length = false;
  bool has_transfer_encoding = false;
  std::vector<std::string_view> codings;
  bool keep_alive = current_.http11;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t') {
      return Refuse(400, "obsolete line folding in a header field");
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
      return Refuse(400, "malformed header field");
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsFieldValue(value)) return Refuse(400, "control character in a header field");
    const absl::string_view aname(name.data(), name.size());
    if (absl::EqualsIgnoreCase(aname, "Content-Length")) {
      // Several values (fields or list elements) are acceptable only when
      // they agree (RFC 9110 §8.6).
      std::vector<std::string_view> elements = ListElements(value);
      if (elements.empty()) return Refuse(400, "invalid Content-Length");
      for (std::string_view element : elements) {
        uint64_t n = 0;
        if (!ParseDecimal(element, n)) {
          return Refuse(400, absl::StrCat("invalid Content-Length: ", std::string(element)));
        }
        if (has_content_length && n != content_length_) {
          return Refuse(400, "conflicting Content-Length values");
        }
        has_content_length = true;
        content_length_ = n;
      }
    } else if (absl::EqualsIgnoreCase(aname, "Transfer-Encoding")) {
      has_transfer_encoding = true;
      for (std::string_view element : ListElements(value)) {
        codings.push_back(TrimOws(element.substr(0, element.find(';'))));
      }
    } else if (absl::EqualsIgnoreCase(aname, "Expect")) {
      if (!absl::EqualsIgnoreCase(absl::string_view(value.data(), value.size()),
                                  "100-continue")) {
        return Refuse(417, "unsupported expectation; only 100-continue is");
      }
      // An HTTP/1.0 client cannot be sent a 100 (RFC 9110 §10.1.1).
      expect_continue_ = current_.http11;
    } else if (absl::EqualsIgnoreCase(aname, "Connection")) {
      for (std::string_view option : ListElements(value)) {
        const absl::string_view o(option.data(), option.size());
        if (absl::EqualsIgnoreCase(o, "close")) keep_alive = false;
        if (absl::EqualsIgnoreCase(o, "keep-alive") && !current_.http11) keep_alive = true;
      }
    }
    current_.request.headers.emplace_back(std::string(name), std::string(value));
  }
  current_.keep_alive = keep_alive;

  if (has_transfer_encoding) {
    // RFC 9112 §6.1-6.3: chunked must be the final coding; with a
    // Content-Length too the framing is ambiguous.
    if (!current_.http11) return Refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (has_content_length) {
      return Refuse(400, "both Content-Length and Transfer-Encoding given");
    }
    if (codings.empty()) return Refuse(400, "empty Transfer-Encoding");
    for (std::string_view coding : codings) {
      if (!absl::EqualsIgnoreCase(absl::string_view(coding.data(), coding.size()), "chunked")) {
        return Refuse(501, absl::StrCat("transfer coding ", std::string(coding),
                                        " not implemented; use chunked or Content-Length"));
      }
    }
    if (codings.size() != 1) return Refuse(400, "chunked applied more than once");
    state_ = State::kChunks;
    chunk_left_ = kNoChunk;
    in_trailers_ = false;
    trailer_lines_ = 0;
    trailer_bytes_ = 0;
    if (expect_continue_ && pos_ == buffer_.size()) {
      FramingEvent event;
      event.kind = FramingEvent::Kind::kContinue;
      return event;
    }
    return FramingEvent{};
  }
  if (content_length_ > limits_.max_body_bytes) {
    // Not read: the handler refuses it with 413 (after 405 and 404, which
    // come first) and the connection is closed, the body unread.
    current_.request.unread_body_bytes = content_length_;
    current_.keep_alive = false;
    return FinishRequest();
  }
  if (content_length_ == 0) return FinishRequest();
  state_ = State::kBody;
  if (expect_continue_ && buffer_.size() - pos_ < content_length_) {
    FramingEvent event;
    event.kind = FramingEvent::Kind::kContinue;
    return event;
  }
  return FramingEvent{};
}

FramingEvent RequestFramer::ReadChunks() {
  std::string& body = current_.request.body;
  for (;;) {
    const size_t available = buffer_.size() - pos_;
    if (in_trailers_) {
      size_t line_end = 0;
      size_t next = 0;
      if (!FindLineEnd(line_end, next)) {
        if (trailer_bytes_ + available > limits_.max_header_bytes) {
          return Refuse(431, absl::StrCat("chunked trailer exceeds the limit of ",
                                          limits_.max_header_bytes, " bytes"));
        }
        return FramingEvent{};
      }
      trailer_bytes_ += next - pos_;
      if (trailer_bytes_ > limits_.max_header_bytes) {
        return Refuse(431, absl::StrCat("chunked trailer exceeds the limit of ",
                                        limits_.max_header_bytes, " bytes"));
      }
      const bool empty = line_end == pos_;
      pos_ = next;
      if (empty) return FinishRequest();
      // Trailer fields are not merged into the headers (RFC 9110 §6.5.1),
      // only counted.
      if (current_.request.headers.size() + ++trailer_lines_ > limits_.max_header_count) {
        return Refuse(431, absl::StrCat("request has more than the limit of ",
                                        limits_.max_header_count, " header fields"));
      }
      continue;
    }
    if (chunk_left_ == kNoChunk) {
      size_t line_end = 0;
      size_t next = 0;
      if (!FindLineEnd(line_end, next)) {
        if (available > kMaxChunkLine) return Refuse(400, "chunk size line too long");
        return FramingEvent{};
      }
      if (next - pos_ > kMaxChunkLine) return Refuse(400, "chunk size line too long");
      std::string_view line(buffer_.data() + pos_, line_end - pos_);
      pos_ = next;
      uint64_t size = 0;
      size_t digits = 0;
      while (digits < line.size() &&
             absl::ascii_isxdigit(static_cast<unsigned char>(line[digits]))) {
        const char c = line[digits];
        const auto v = static_cast<uint64_t>(
            absl::ascii_isdigit(static_cast<unsigned char>(c))
                ? c - '0'
                : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10);
        size = size > (UINT64_MAX >> 4) ? UINT64_MAX : (size << 4) | v;
        ++digits;
      }
      const std::string_view rest = TrimOws(line.substr(digits));
      if (digits == 0 || (!rest.empty() && rest.front() != ';')) {
        return Refuse(400, "malformed chunk size");
      }
      if (size == 0) {
        in_trailers_ = true;
        continue;
      }
      if (size > limits_.max_body_bytes - body.size()) {
        current_.request.unread_body_bytes =
            size > UINT64_MAX - body.size() ? UINT64_MAX : body.size() + size;
        body.clear();
        current_.keep_alive = false;
        return FinishRequest();
      }
      chunk_left_ = size;
      continue;
    }
    if (chunk_left_ > 0) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(available, chunk_left_));
      body.append(buffer_, pos_, take);
      pos_ += take;
      chunk_left_ -= take;
      if (chunk_left_ > 0) return FramingEvent{};
      continue;
    }
    // The CRLF after a chunk's data.
    if (available < 1) return FramingEvent{};
    if (buffer_[pos_] == '\n') {
      pos_ += 1;
    } else if (available < 2) {
      return FramingEvent{};
    } else if (buffer_[pos_] == '\r' && buffer_[pos_ + 1] == '\n') {
      pos_ += 2;
    } else {
      return Refuse(400, "chunk data not followed by CRLF");
    }
    chunk_left_ = kNoChunk;
  }
}

FramingEvent RequestFramer::FinishRequest() {
  FramingEvent event = std::move(current_);
  current_ = FramingEvent{};
  event.kind = FramingEvent::Kind::kRequest;
  if (event.keep_alive) {
    state_ = State::kIdle;
  } else {
    Close();
  }
  scan_ = pos_;
  return event;
}

}  // namespace pdkarchive::ingest
