#include "tests/test_support/heap.h"

#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__)
// From the AddressSanitizer runtime (sanitizer/allocator_interface.h, which
// Debian's GCC does not ship).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace pdkarchive::testing {

void UseOneMallocArena() {
#if !defined(__SANITIZE_ADDRESS__)
  mallopt(M_ARENA_MAX, 1);
#endif
}

size_t HeapBytesInUse() {
#if defined(__SANITIZE_ADDRESS__)
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
#endif
}

}  // namespace pdkarchive::testing
