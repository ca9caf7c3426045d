#include "tests/test_support/test_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace pdkarchive::testing {

std::filesystem::path FreshTestDir(std::string_view prefix) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = absl::StrCat(std::string(prefix), "-", ::getpid());
  if (test != nullptr) absl::StrAppend(&name, "-", test->test_suite_name(), ".", test->name());
  std::filesystem::path dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace pdkarchive::testing
