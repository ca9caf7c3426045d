// Access to the checked-in files under tests/testdata.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_TEST_DATA_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_TEST_DATA_H_

#include <string>
#include <string_view>

namespace pdkarchive::testing {

// The bytes of tests/testdata/`relative_path` (e.g. "topics.json"), read from
// the source tree. A missing or unreadable file fails the running test
// (ADD_FAILURE) and returns an empty string.
std::string ReadTestData(std::string_view relative_path);

// The one published PDK API 2.0 payload (device.request.allowed, the only
// example in tests/testdata/pdk-2.0/topics.json), as compact JSON. Fails the
// running test and returns "" when the file does not hold it.
std::string PdkV2ExamplePayload();

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_TEST_DATA_H_
