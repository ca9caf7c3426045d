// How much heap the test process holds, for tests that bound memory.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_HEAP_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_HEAP_H_

#include <cstddef>

namespace pdkarchive::testing {

// Makes every thread allocate from glibc's main arena, which is all that
// HeapBytesInUse can see without sanitizers. Call before threads start.
void UseOneMallocArena();

// Bytes allocated and not yet freed, process-wide (the heap, not RSS: memory
// malloc keeps after a free does not count). Under AddressSanitizer, its
// allocator's own count.
size_t HeapBytesInUse();

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_HEAP_H_
