// RequestFramer: the HTTP/1.1 request framing of ingest (RFC 9112), free of
// any server framework. It cuts a connection's byte stream into requests and
// enforces the limits that must hold before anything else looks at a request:
// the number of header fields and the size of the request head (refused with
// 431), and the body size (the request is handed on with its body unread,
// for the handler's 413). It validates Content-Length and Transfer-Encoding
// (400 on anything ambiguous, 501 on a coding other than chunked) and says
// when an `Expect: 100-continue` should be answered with an interim 100.
//
// Every byte is looked at a bounded number of times, so the work per request
// is linear in its size, however the bytes are split across reads.
#ifndef PDKARCHIVE_INGEST_REQUEST_FRAMER_H_
#define PDKARCHIVE_INGEST_REQUEST_FRAMER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ingest/webhook_handler.h"

namespace pdkarchive::ingest {

struct FramingLimits {
  // Header fields in one request head (trailer fields of a chunked body
  // count too); more is refused with 431.
  size_t max_header_count = 100;
  // Bytes of a request head: request line, header fields and their line
  // ends; more is refused with 431.
  size_t max_header_bytes = 16 * 1024;
  // The largest body read; a larger one is left unread (see
  // HttpRequest::unread_body_bytes) and the connection closed after the answer.
  size_t max_body_bytes = 1 << 20;
};

// One step of the framing of a connection.
struct FramingEvent {
  enum class Kind {
    // Nothing more can be done until more bytes arrive.
    kNeedMore,
    // The head of the next request is acceptable and the client asked to be
    // told so before it sends the body: answer "100 Continue" (in order,
    // before that request's final answer).
    kContinue,
    // A whole request: answer `request`.
    kRequest,
    // The bytes are not an acceptable request: answer `status` with
    // `reason` and close the connection.
    kRefusal,
  };
  Kind kind = Kind::kNeedMore;
  HttpRequest request;
  // HTTP/1.1 (else HTTP/1.0); the answer uses the request's version.
  bool http11 = true;
  // Whether the connection may carry further requests after the answer to
  // this one. False for kRefusal and for a request whose body was not read.
  bool keep_alive = true;
  int status = 0;
  std::string reason;
};

// One per connection. Not thread-safe.
class RequestFramer {
 public:
  explicit RequestFramer(FramingLimits limits) : limits_(limits) {}

  // Appends bytes received on the connection. After a kRefusal or a request
  // that ends the connection, bytes are dropped.
  void Feed(std::string_view bytes);

  // The next event; call until kNeedMore. Requests come out in the order
  // they were sent (pipelining).
  FramingEvent Next();

  // True while part of a request has arrived but not all of it.
  bool InRequest() const { return state_ != State::kIdle && state_ != State::kClosed; }
  // True while the head of the current request is complete and its body is
  // being read.
  bool InBody() const { return state_ == State::kBody || state_ == State::kChunks; }
  // True once the connection must carry no further request.
  bool Closed() const { return state_ == State::kClosed; }
  // Ends the framing: what is buffered or arrives later is dropped.
  void Close();

 private:
  enum class State { kIdle, kHead, kBody, kChunks, kClosed };

  FramingEvent Refuse(int status, std::string reason);
  // Parses a complete head (without its empty line) and starts the body.
  FramingEvent ParseHead(std::string_view head);
  FramingEvent FinishRequest();
  // Reads chunks into the body; kNeedMore, kRequest, or a refusal.
  FramingEvent ReadChunks();
  // Skips to one line end starting at pos_; false when it has not arrived.
  bool FindLineEnd(size_t& line_end, size_t& next) const;
  void Compact();

  FramingLimits limits_;
  State state_ = State::kIdle;
  std::string buffer_;
  size_t pos_ = 0;         // first unconsumed byte of buffer_
  size_t scan_ = 0;        // kHead: how far the head has been scanned
  size_t line_start_ = 0;  // kHead: where the line being scanned starts
  size_t head_lines_ = 0;  // kHead: lines seen so far, request line included
  // The request being framed, from its head on.
  FramingEvent current_;
  uint64_t content_length_ = 0;
  bool expect_continue_ = false;
  // kChunks: bytes left in the current chunk's data (with its CRLF), or
  // kNoChunk between chunks; trailer lines seen.
  static constexpr uint64_t kNoChunk = UINT64_MAX;
  uint64_t chunk_left_ = kNoChunk;
  bool in_trailers_ = false;
  size_t trailer_lines_ = 0;
  size_t trailer_bytes_ = 0;
};

}  // namespace pdkarchive::ingest

#endif  // PDKARCHIVE_INGEST_REQUEST_FRAMER_H_
