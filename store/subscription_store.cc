#include "store/subscription_store.h"

#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace pdkarchive::store {

bool ValidSubscriptionName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '-'))) return false;
  }
  return true;
}

absl::Status OneSubscriptionChanged(int64_t rows_changed,
                                    const std::string& name) {
  if (rows_changed > 0) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("no subscription named ", name));
}

absl::StatusOr<std::string> NewSubscriptionSecret() {
  std::string bytes(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()),
                 static_cast<int>(bytes.size())) != 1) {
    return absl::InternalError("cannot draw a secret: RAND_bytes failed");
  }
  return absl::WebSafeBase64Escape(bytes);
}

}  // namespace pdkarchive::store
