#include "tests/test_support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pdkarchive::testing {

std::string HttpReply::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, absl::string_view(name.data(), name.size()))) return v;
  }
  return "";
}

absl::StatusOr<HttpConnection> HttpConnection::Connect(int port,
                                                       std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(err)));
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return HttpConnection(fd, timeout);
}

HttpConnection::HttpConnection(HttpConnection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      timeout_(other.timeout_),
      buffer_(std::move(other.buffer_)) {}

HttpConnection& HttpConnection::operator=(HttpConnection&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    timeout_ = other.timeout_;
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status HttpConnection::SendRaw(std::string_view raw) {
  while (!raw.empty()) {
    ssize_t n = ::send(fd_, raw.data(), raw.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
    }
    raw.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<HttpReply> HttpConnection::ReadReply() {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  auto fill = [&]() -> absl::Status {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("no reply in time");
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r == 0) return absl::DeadlineExceededError("no reply in time");
    if (r < 0) return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n == 0) return absl::UnavailableError("connection closed by server");
    if (n < 0) return absl::UnavailableError(absl::StrCat("recv: ", std::strerror(errno)));
    buffer_.append(chunk, static_cast<size_t>(n));
    return absl::OkStatus();
  };
  size_t header_end;
  while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (absl::Status s = fill(); !s.ok()) return s;
  }
  HttpReply reply;
  std::string head = buffer_.substr(0, header_end);
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || !absl::SimpleAtoi(status_line.substr(9, 3), &reply.status)) {
    return absl::InternalError(absl::StrCat("bad status line: ", status_line));
  }
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      reply.headers.emplace_back(
          line.substr(0, colon),
          std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
    }
    pos = end + 2;
  }
  size_t length = 0;
  if (std::string cl = reply.Header("Content-Length"); !cl.empty()) {
    if (!absl::SimpleAtoi(cl, &length)) return absl::InternalError("bad Content-Length");
  }
  const size_t body_start = header_end + 4;
  while (buffer_.size() < body_start + length) {
    if (absl::Status s = fill(); !s.ok()) return s;
  }
  reply.body = buffer_.substr(body_start, length);
  buffer_.erase(0, body_start + length);
  return reply;
}

absl::StatusOr<HttpReply> HttpConnection::Request(
    std::string_view method, std::string_view path, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string raw = std::string(method) + " " + std::string(path) +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) absl::StrAppend(&raw, k, ": ", v, "\r\n");
  absl::StrAppend(&raw, "Content-Length: ", body.size(), "\r\n\r\n");
  raw.append(body);
  if (absl::Status s = SendRaw(raw); !s.ok()) return s;
  return ReadReply();
}

bool HttpConnection::PeerClosed() {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 2000) <= 0) return false;
  char c;
  return ::recv(fd_, &c, 1, MSG_PEEK) == 0;
}

absl::StatusOr<HttpReply> HttpRequest(
    int port, std::string_view method, std::string_view path, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  absl::StatusOr<HttpConnection> conn = HttpConnection::Connect(port);
  if (!conn.ok()) return conn.status();
  return conn->Request(method, path, body, headers);
}

std::vector<std::pair<std::string, std::string>> SignedHeaders(std::string_view secret,
                                                               std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &mac_len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < mac_len; ++i) {
    hex.push_back(kHex[mac[i] >> 4]);
    hex.push_back(kHex[mac[i] & 15]);
  }
  return {{"Content-Type", "application/json"}, {"X-PDK-SIGNATURE", hex}};
}

int64_t SequenceInReply(std::string_view body) {
  constexpr std::string_view kKey = "\"sequence\":";
  size_t at = body.find(kKey);
  if (at == std::string_view::npos) return -1;
  at = body.find_first_not_of(' ', at + kKey.size());
  if (at == std::string_view::npos) return -1;
  const std::string_view digits = body.substr(at, body.find_first_not_of("0123456789", at) - at);
  int64_t sequence = -1;
  if (!absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &sequence)) return -1;
  return sequence;
}

}  // namespace pdkarchive::testing
