// An empty directory of the running test's own, for archives and logs.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_TEST_DIR_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_TEST_DIR_H_

#include <filesystem>
#include <string_view>

namespace pdkarchive::testing {

// temp_directory_path()/`prefix`-PID-TESTNAME, emptied and created. The
// caller removes it (std::filesystem::remove_all) when the test ends.
std::filesystem::path FreshTestDir(std::string_view prefix);

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_TEST_DIR_H_
