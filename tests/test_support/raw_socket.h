// A bare TCP connection for tests of clients that misbehave below HTTP:
// it sends exactly the bytes it is told to (trickled, malformed, pipelined,
// far too many) and reads back whatever the server sends.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_RAW_SOCKET_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_RAW_SOCKET_H_

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace pdkarchive::testing {

// One connection to 127.0.0.1. Not thread-safe.
class RawSocket {
 public:
  // Connected with TCP_NODELAY and a 10 s send timeout (a server that
  // neither reads nor closes must not hang the test); null on failure.
  static std::unique_ptr<RawSocket> Connect(int port);
  ~RawSocket();
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  // False once the peer has closed or reset the connection.
  bool Send(std::string_view data);

  // Whether the server has answered or closed: something to read, EOF or an
  // error, within `wait`.
  bool Answered(std::chrono::milliseconds wait);

  // What the server sent, and whether it then closed the connection.
  struct Answer {
    std::string bytes;
    bool closed = false;  // EOF, or a reset
    // The first line of the answer, or what happened instead.
    std::string StatusLine() const;
  };

  // Reads until the server closes, goes quiet for `wait`, or (with
  // `first_head_only`) has sent the status line and headers of an answer.
  Answer ReadAnswer(std::chrono::milliseconds wait, bool first_head_only = false);

 private:
  explicit RawSocket(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_RAW_SOCKET_H_
