#include "tests/test_support/test_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace pdkarchive::testing {

std::filesystem::path FreshTestDir(std::string_view prefix) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = absl::StrCat(std::string(prefix), "-", ::getpid());
  if (test != nullptr) {
    // A parameterized test's names hold '/': keep the directory one level.
    absl::StrAppend(&name, "-", absl::StrReplaceAll(absl::StrCat(test->test_suite_name(), ".",
                                                                 test->name()),
                                                    {{"/", "_"}}));
  }
  std::filesystem::path dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace pdkarchive::testing
