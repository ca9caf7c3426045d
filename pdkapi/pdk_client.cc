#include "pdkapi/pdk_client.h"

#include <curl/curl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pdkarchive::pdkapi {
namespace {

constexpr size_t kMessageLimit = 300;
constexpr std::chrono::seconds kRefreshEarly{60};

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct HeaderSink {
  std::string retry_after;
  std::string rate_limit_reset;
};

size_t ReadHeader(char* data, size_t size, size_t n, void* out) {
  const std::string line(data, size * n);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    const std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    const std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    auto* sink = static_cast<HeaderSink*>(out);
    if (name == "retry-after") sink->retry_after = value;
    if (name == "x-ratelimit-reset") sink->rate_limit_reset = value;
  }
  return size * n;
}

// The host of `url` in lower case, "" when it cannot be parsed.
std::string UrlHost(const std::string& url) {
  CURLU* u = curl_url();
  std::string host;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* h = nullptr;
    if (curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && h != nullptr) {
      host = absl::AsciiStrToLower(h);
      curl_free(h);
    }
  }
  curl_url_cleanup(u);
  return host;
}

// The path of `url` (for messages: never a query string or credentials).
std::string UrlPath(const std::string& url) {
  CURLU* u = curl_url();
  std::string path = "/";
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* p = nullptr;
    if (curl_url_get(u, CURLUPART_PATH, &p, 0) == CURLUE_OK && p != nullptr) {
      path = p;
      curl_free(p);
    }
  }
  curl_url_cleanup(u);
  return path;
}

std::string Truncate(std::string text) {
  text = std::string(absl::StripAsciiWhitespace(text));
  if (text.size() > kMessageLimit) text = text.substr(0, kMessageLimit) + "…";
  return text;
}

std::string ReasonOf(long status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "";
  }
}

// PDK's message in `body`: its "message" or "error" member when the body is
// a JSON object with one (a string, or an object with a "message"), else
// the body itself.
std::string MessageOf(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    for (const char* key : {"message", "error", "error_description"}) {
      auto it = doc.FindMember(key);
      if (it == doc.MemberEnd()) continue;
      if (it->value.IsString()) return Truncate(it->value.GetString());
      if (it->value.IsObject()) {
        auto inner = it->value.FindMember("message");
        if (inner != it->value.MemberEnd() && inner->value.IsString())
          return Truncate(inner->value.GetString());
      }
    }
  }
  return Truncate(body);
}

absl::StatusCode CodeOf(long status) {
  if (status == 400 || status == 422) return absl::StatusCode::kInvalidArgument;
  if (status == 401 || status == 403)
    return absl::StatusCode::kPermissionDenied;
  if (status == 404) return absl::StatusCode::kNotFound;
  if (status == 409) return absl::StatusCode::kAlreadyExists;
  if (status == 429) return absl::StatusCode::kResourceExhausted;
  if (status >= 500) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kFailedPrecondition;
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Text(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string StringMember(const rapidjson::Value& v, const char* key) {
  auto it = v.FindMember(key);
  if (it == v.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

absl::StatusOr<PdkSubscription> FromValue(const rapidjson::Value& v) {
  if (!v.IsObject())
    return absl::InvalidArgumentError("PDK's subscription is not an object");
  PdkSubscription s;
  s.id = StringMember(v, "id");
  s.name = StringMember(v, "name");
  s.url = StringMember(v, "url");
  auto scope = v.FindMember("scope");
  if (scope != v.MemberEnd()) {
    if (scope->value.IsString()) {
      s.scope = scope->value.GetString();
    } else {
      rapidjson::StringBuffer buffer;
      Writer w(buffer);
      scope->value.Accept(w);
      s.scope = buffer.GetString();
    }
  }
  auto auth = v.FindMember("authentication");
  if (auth != v.MemberEnd() && auth->value.IsObject()) {
    s.auth_type = StringMember(auth->value, "type");
    s.auth_user = StringMember(auth->value, "user");
    s.auth_password = StringMember(auth->value, "password");
  }
  auto events = v.FindMember("events");
  if (events != v.MemberEnd() && events->value.IsArray()) {
    for (const rapidjson::Value& e : events->value.GetArray()) {
      if (e.IsString()) s.events.emplace_back(e.GetString());
    }
  }
  auto active = v.FindMember("active");
  if (active != v.MemberEnd() && active->value.IsBool())
    s.active = active->value.GetBool();
  auto ssl = v.FindMember("sslVerification");
  if (ssl != v.MemberEnd() && ssl->value.IsBool())
    s.ssl_verification = ssl->value.GetBool();
  auto level = v.FindMember("secrecyLevel");
  if (level != v.MemberEnd() && level->value.IsInt())
    s.secrecy_level = level->value.GetInt();
  s.expires_at = StringMember(v, "expiresAt");
  s.secret = StringMember(v, "secret");
  auto odometer = v.FindMember("odometer");
  if (odometer != v.MemberEnd() && odometer->value.IsInt64())
    s.odometer = odometer->value.GetInt64();
  return s;
}

}  // namespace

bool IsLoopbackUrl(const std::string& url) {
  GlobalInit();
  const std::string host = UrlHost(url);
  return host == "127.0.0.1" || host == "::1" || host == "[::1]" ||
         host == "localhost";
}

PdkClient::PdkClient(PdkAccess access, Options options)
    : access_(std::move(access)), options_(options) {}

PdkClient::~PdkClient() = default;

absl::StatusOr<std::unique_ptr<PdkClient>> PdkClient::Create(PdkAccess access,
                                                             Options options) {
  GlobalInit();
  while (!access.api_url.empty() && access.api_url.back() == '/')
    access.api_url.pop_back();
  const std::string lower = absl::AsciiStrToLower(access.api_url);
  if (lower.rfind("https://", 0) != 0) {
    if (lower.rfind("http://", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--pdk-api \"", access.api_url, "\" is not an https:// URL"));
    }
    if (!IsLoopbackUrl(access.api_url)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--pdk-api \"", access.api_url,
          "\" is http://: the client secret and tokens would travel in clear "
          "(http is allowed to a loopback host only)"));
    }
  }
  if (UrlHost(access.api_url).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--pdk-api \"", access.api_url, "\" is not a URL"));
  }
  if (access.org.empty())
    return absl::InvalidArgumentError("PDK access needs --pdk-org");
  if (access.client_id.empty())
    return absl::InvalidArgumentError("PDK access needs --pdk-client-id");
  if (access.client_secret.empty()) {
    return absl::InvalidArgumentError(
        "PDK access needs --pdk-client-secret-file");
  }
  return std::unique_ptr<PdkClient>(new PdkClient(std::move(access), options));
}

std::string PdkClient::CollectionUrl(int api) const {
  if (api == 2) {
    return absl::StrCat(access_.api_url, "/api/organizations/", access_.org,
                        "/subscriptions");
  }
  return absl::StrCat(access_.api_url, "/api/ous/", access_.org, "/hooks");
}

absl::StatusOr<PdkClient::Reply> PdkClient::Exchange(
    const std::string& method, const std::string& url,
    const std::string& content_type, const std::string& body,
    const std::string& bearer, const std::string* basic_user,
    const std::string* basic_password) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("cannot start libcurl");
  Reply reply;
  HeaderSink headers;
  char error[CURL_ERROR_SIZE] = {};
  curl_slist* list = nullptr;
  list = curl_slist_append(list, "Accept: application/json");
  if (!content_type.empty())
    list = curl_slist_append(list, ("Content-Type: " + content_type).c_str());
  if (!bearer.empty())
    list = curl_slist_append(list, ("Authorization: Bearer " + bearer).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST" || method == "PUT" || !body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body.size()));
  }
  if (basic_user != nullptr && basic_password != nullptr) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, basic_user->c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, basic_password->c_str());
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ReadHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &headers);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(options_.total_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "pdk-archive");
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach PDK (", method, " ", access_.api_url, UrlPath(url),
        "): ", error[0] != '\0' ? error : curl_easy_strerror(rc)));
  }
  reply.retry_after = headers.retry_after;
  reply.rate_limit_reset = headers.rate_limit_reset;
  return reply;
}

absl::Status PdkClient::PdkError(const std::string& method,
                                 const std::string& url,
                                 const Reply& reply) const {
  const std::string reason = ReasonOf(reply.status);
  std::string message = MessageOf(reply.body);
  return absl::Status(
      CodeOf(reply.status),
      absl::StrCat("PDK answered ", reply.status,
                   reason.empty() ? "" : " " + reason, " to ", method, " ",
                   UrlPath(url), message.empty() ? "" : ": " + message));
}

void PdkClient::WaitOut(const Reply& reply) const {
  std::chrono::milliseconds wait{1000};
  int64_t seconds = 0;
  if (absl::SimpleAtoi(reply.retry_after, &seconds) && seconds >= 0) {
    wait = std::chrono::seconds(seconds);
  } else if (absl::SimpleAtoi(reply.rate_limit_reset, &seconds)) {
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    wait = std::chrono::seconds(std::max<int64_t>(seconds - now, 1));
  }
  std::this_thread::sleep_for(std::min(wait, options_.max_wait));
}

absl::StatusOr<std::string> PdkClient::Token(bool refresh) {
  const auto now = std::chrono::steady_clock::now();
  if (!refresh && !token_.empty() && now < token_until_) return token_;
  token_.clear();
  const std::string url = access_.api_url + "/oauth2/token";
  absl::StatusOr<Reply> reply;
  for (int attempt = 0;; ++attempt) {
    reply = Exchange("POST", url, "application/x-www-form-urlencoded",
                     "grant_type=client_credentials", "", &access_.client_id,
                     &access_.client_secret);
    if (!reply.ok()) return reply.status();
    if (reply->status != 429 || attempt >= options_.max_retries) break;
    WaitOut(*reply);
  }
  if (reply->status < 200 || reply->status >= 300) {
    absl::Status error = PdkError("POST", url, *reply);
    return absl::Status(error.code(), absl::StrCat("cannot get a PDK token: ",
                                                   error.message()));
  }
  rapidjson::Document doc;
  doc.Parse(reply->body.data(), reply->body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("id_token") ||
      !doc["id_token"].IsString()) {
    return absl::UnavailableError(
        "cannot get a PDK token: PDK's reply has no id_token");
  }
  token_ = doc["id_token"].GetString();
  int64_t expires_in = 300;
  if (doc.HasMember("expires_in")) {
    if (doc["expires_in"].IsInt64()) {
      expires_in = doc["expires_in"].GetInt64();
    } else if (doc["expires_in"].IsString()) {
      (void)absl::SimpleAtoi(doc["expires_in"].GetString(), &expires_in);
    }
  }
  const std::chrono::seconds life(std::max<int64_t>(expires_in, 0));
  // 60 s before it expires; a short-lived token at half its life.
  token_until_ =
      now + std::max<std::chrono::seconds>(life - kRefreshEarly, life / 2);
  return token_;
}

absl::StatusOr<PdkClient::Reply> PdkClient::Call(const std::string& method,
                                                 const std::string& url,
                                                 const std::string& body) {
  bool refreshed = false;
  int waits = 0;
  while (true) {
    absl::StatusOr<std::string> token = Token(false);
    if (!token.ok()) return token.status();
    absl::StatusOr<Reply> reply =
        Exchange(method, url, body.empty() ? "" : "application/json", body,
                 *token, nullptr, nullptr);
    if (!reply.ok()) return reply.status();
    if (reply->status == 401 && !refreshed) {
      refreshed = true;
      token_.clear();
      continue;
    }
    if (reply->status == 429) {
      if (waits >= options_.max_retries) {
        absl::Status error = PdkError(method, url, *reply);
        return absl::ResourceExhaustedError(
            absl::StrCat(error.message(), " (still rate limited after ", waits,
                         " waits; try again later)"));
      }
      ++waits;
      WaitOut(*reply);
      continue;
    }
    if (reply->status < 200 || reply->status >= 300)
      return PdkError(method, url, *reply);
    return reply;
  }
}

std::string PdkClient::ToJson(const PdkSubscription& s) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Text(w, "name", s.name);
  Text(w, "url", s.url);
  if (!s.scope.empty()) {
    // A list of panel/cloud node ids is kept as its JSON text.
    rapidjson::Document list;
    if (s.scope[0] == '[' && !list.Parse(s.scope.c_str()).HasParseError() &&
        list.IsArray()) {
      w.Key("scope");
      list.Accept(w);
    } else {
      Text(w, "scope", s.scope);
    }
  }
  w.Key("authentication");
  w.StartObject();
  Text(w, "type", s.auth_type);
  if (s.auth_type == "Basic") {
    Text(w, "user", s.auth_user);
    Text(w, "password", s.auth_password);
  }
  w.EndObject();
  w.Key("events");
  w.StartArray();
  for (const std::string& e : s.events)
    w.String(e.data(), static_cast<rapidjson::SizeType>(e.size()));
  w.EndArray();
  if (s.active) {
    w.Key("active");
    w.Bool(*s.active);
  }
  if (s.ssl_verification) {
    w.Key("sslVerification");
    w.Bool(*s.ssl_verification);
  }
  if (s.secrecy_level) {
    w.Key("secrecyLevel");
    w.Int(*s.secrecy_level);
  }
  if (!s.expires_at.empty()) Text(w, "expiresAt", s.expires_at);
  if (!s.secret.empty()) Text(w, "secret", s.secret);
  w.EndObject();
  return buffer.GetString();
}

absl::StatusOr<PdkSubscription> PdkClient::FromJson(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError())
    return absl::UnavailableError("PDK's reply is not JSON");
  return FromValue(doc);
}

absl::StatusOr<std::string> PdkClient::CreateSubscription(
    int api, const PdkSubscription& s) {
  const std::string url = CollectionUrl(api);
  absl::StatusOr<Reply> reply = Call("POST", url, ToJson(s));
  if (!reply.ok()) return reply.status();
  rapidjson::Document doc;
  doc.Parse(reply->body.data(), reply->body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("id") ||
      !doc["id"].IsString()) {
    return absl::UnavailableError(absl::StrCat(
        "PDK answered ", reply->status, " to POST ", UrlPath(url),
        " without the new subscription's id: ", Truncate(reply->body)));
  }
  return std::string(doc["id"].GetString());
}

absl::StatusOr<std::vector<PdkSubscription>> PdkClient::ListSubscriptions(
    int api) {
  const std::string url = CollectionUrl(api);
  absl::StatusOr<Reply> reply = Call("GET", url, "");
  if (!reply.ok()) return reply.status();
  rapidjson::Document doc;
  doc.Parse(reply->body.data(), reply->body.size());
  if (doc.HasParseError() || !doc.IsArray()) {
    return absl::UnavailableError(
        absl::StrCat("PDK's reply to GET ", UrlPath(url), " is not an array"));
  }
  std::vector<PdkSubscription> subs;
  for (const rapidjson::Value& v : doc.GetArray()) {
    absl::StatusOr<PdkSubscription> s = FromValue(v);
    if (s.ok()) subs.push_back(*std::move(s));
  }
  return subs;
}

absl::StatusOr<PdkSubscription> PdkClient::GetSubscription(
    int api, const std::string& id) {
  const std::string url = absl::StrCat(CollectionUrl(api), "/", id);
  absl::StatusOr<Reply> reply = Call("GET", url, "");
  if (!reply.ok()) return reply.status();
  return FromJson(reply->body);
}

absl::Status PdkClient::UpdateSubscription(int api, const PdkSubscription& s) {
  // API 2's update is unconfirmed (NOTES.md §2.2): PUT with the whole
  // object, as in 1.0.
  const std::string url = absl::StrCat(CollectionUrl(api), "/", s.id);
  return Call("PUT", url, ToJson(s)).status();
}

absl::Status PdkClient::DeleteSubscription(int api, const std::string& id) {
  const std::string url = absl::StrCat(CollectionUrl(api), "/", id);
  return Call("DELETE", url, "").status();
}

}  // namespace pdkarchive::pdkapi
