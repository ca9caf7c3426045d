#include "tests/test_support/raw_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace pdkarchive::testing {

std::unique_ptr<RawSocket> RawSocket::Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return nullptr;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return nullptr;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval send_timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  return std::unique_ptr<RawSocket>(new RawSocket(fd));
}

RawSocket::~RawSocket() { ::close(fd_); }

bool RawSocket::Send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool RawSocket::Answered(std::chrono::milliseconds wait) {
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
}

std::string RawSocket::Answer::StatusLine() const {
  return bytes.empty() ? (closed ? "closed without an answer" : "no answer")
                       : bytes.substr(0, bytes.find('\r'));
}

RawSocket::Answer RawSocket::ReadAnswer(std::chrono::milliseconds wait, bool first_head_only) {
  Answer answer;
  char buf[65536];
  while (!(first_head_only && answer.bytes.find("\r\n\r\n") != std::string::npos)) {
    if (!Answered(wait)) break;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      answer.closed = true;
      break;
    }
    answer.bytes.append(buf, static_cast<size_t>(n));
  }
  return answer;
}

}  // namespace pdkarchive::testing
