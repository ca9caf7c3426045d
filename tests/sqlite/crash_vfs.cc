#include "tests/sqlite/crash_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

namespace pdkarchive::testing {
namespace {

// The unit of a torn write: each sector of an unsynced write survives a cut
// on its own, or not.
constexpr int64_t kSectorSize = 512;

// The files whose writes are buffered: everything SQLite needs to be durable.
// Temporary files (statement journals, sorter spills) pass straight through.
constexpr int kDurableFiles =
    SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL;

struct PendingOp {
  bool truncate = false;
  int64_t offset = 0;  // the new size, for a truncate
  std::string data;
};

// The unsynced writes of one path. Shared by every handle open on the path
// and kept after the last one closes: closing a file does not sync it.
struct FileState {
  int open_flags = 0;
  std::vector<sqlite3_file*> handles;  // the real files open on this path
  std::vector<PendingOp> ops;          // in the order they were made
  // The newest pending bytes by offset, in non-overlapping segments.
  std::map<int64_t, std::string> overlay;
  // Real bytes at or past this offset were truncated away (pending).
  int64_t cut_from = INT64_MAX;
  // The size SQLite sees; valid while `ops` is not empty.
  int64_t size = 0;

  void AddWrite(int64_t offset, std::string data);
  void AddTruncate(int64_t new_size);
  // Lays the pending bytes over `buf`, which holds what the real file had at
  // [offset, offset + amt); returns the status of the read SQLite sees.
  int Overlay(char* buf, int64_t amt, int64_t offset) const;
  void Clear() {
    ops.clear();
    overlay.clear();
    cut_from = INT64_MAX;
    size = 0;
  }
};

void FileState::AddWrite(int64_t offset, std::string data) {
  const int64_t end = offset + static_cast<int64_t>(data.size());
  // A segment that starts before `offset` and reaches into the new bytes is
  // cut short (and split when it also reaches past them).
  auto it = overlay.lower_bound(offset);
  if (it != overlay.begin()) {
    auto prev = std::prev(it);
    const int64_t prev_end = prev->first + static_cast<int64_t>(prev->second.size());
    if (prev_end > offset) {
      if (prev_end > end) {
        overlay.emplace(end, prev->second.substr(static_cast<size_t>(end - prev->first)));
      }
      prev->second.resize(static_cast<size_t>(offset - prev->first));
    }
  }
  // Segments starting inside the new bytes go, keeping any tail past them.
  it = overlay.lower_bound(offset);
  while (it != overlay.end() && it->first < end) {
    const int64_t seg_end = it->first + static_cast<int64_t>(it->second.size());
    if (seg_end > end) {
      overlay.emplace(end, it->second.substr(static_cast<size_t>(end - it->first)));
    }
    it = overlay.erase(it);
  }
  ops.push_back({false, offset, data});
  overlay.emplace(offset, std::move(data));
  size = std::max(size, end);
}

void FileState::AddTruncate(int64_t new_size) {
  overlay.erase(overlay.lower_bound(new_size), overlay.end());
  if (!overlay.empty()) {
    auto last = std::prev(overlay.end());
    const int64_t last_end = last->first + static_cast<int64_t>(last->second.size());
    if (last_end > new_size) last->second.resize(static_cast<size_t>(new_size - last->first));
  }
  cut_from = std::min(cut_from, new_size);
  size = new_size;
  ops.push_back({true, new_size, {}});
}

int FileState::Overlay(char* buf, int64_t amt, int64_t offset) const {
  const int64_t end = offset + amt;
  if (cut_from < end) {
    const int64_t from = std::max(offset, cut_from);
    std::memset(buf + (from - offset), 0, static_cast<size_t>(end - from));
  }
  auto it = overlay.upper_bound(offset);
  if (it != overlay.begin()) --it;
  for (; it != overlay.end() && it->first < end; ++it) {
    const int64_t seg_end = it->first + static_cast<int64_t>(it->second.size());
    const int64_t lo = std::max(it->first, offset);
    const int64_t hi = std::min(seg_end, end);
    if (lo < hi) {
      std::memcpy(buf + (lo - offset), it->second.data() + (lo - it->first),
                  static_cast<size_t>(hi - lo));
    }
  }
  if (end > size) {
    const int64_t from = std::max(offset, size);
    std::memset(buf + (from - offset), 0, static_cast<size_t>(end - from));
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

}  // namespace

class CrashVfs::Disk {
 public:
  explicit Disk(std::string name);
  ~Disk();
  Disk(const Disk&) = delete;
  Disk& operator=(const Disk&) = delete;

  const std::string& name() const { return name_; }

  void CutPower(PowerCutMode mode, uint32_t seed) {
    std::lock_guard lock(mu_);
    if (power_on_) CutLocked(mode, seed);
  }
  void CutPowerAt(uint64_t io_count, PowerCutMode mode, uint32_t seed) {
    std::lock_guard lock(mu_);
    countdown_ = io_count == 0 ? 1 : io_count;
    armed_mode_ = mode;
    armed_seed_ = seed;
  }
  bool WaitForPowerCut(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return !power_on_; });
  }
  bool power_on() const {
    std::lock_guard lock(mu_);
    return power_on_;
  }
  void SetFault(DiskFault fault) {
    std::lock_guard lock(mu_);
    fault_ = fault;
  }
  CrashVfsStats stats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  // Our sqlite3_file: the real (unix) file follows it in the same allocation.
  struct File {
    sqlite3_file base;
    Disk* disk;
    FileState* state;  // null for temporary files, which are not buffered
    sqlite3_file* real;
  };
  static constexpr size_t kRealOffset = (sizeof(File) + 15) / 16 * 16;

  enum class Change { kWrite, kTruncate, kSync };

  static Disk* Of(sqlite3_vfs* vfs) { return static_cast<Disk*>(vfs->pAppData); }
  static File* Of(sqlite3_file* file) { return reinterpret_cast<File*>(file); }

  // Checks power, the armed cut and the fault before a change to a file.
  int BeforeChangeLocked(const File& f, Change change);
  void CutLocked(PowerCutMode mode, uint32_t seed);
  // Writes or truncates the real file at `path`, through an open handle
  // when there is one.
  int WriteThroughLocked(const std::string& path, FileState& state, const PendingOp& op,
                         int64_t from, int64_t to);
  int ApplyAllLocked(const std::string& path, FileState& state);

  // VFS methods.
  static int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags,
                  int* out_flags);
  static int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir);
  static int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out);
  static int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out);
  static void* DlOpen(sqlite3_vfs* vfs, const char* name);
  static void DlError(sqlite3_vfs* vfs, int n, char* out);
  static void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void);
  static void DlClose(sqlite3_vfs* vfs, void* handle);
  static int Randomness(sqlite3_vfs* vfs, int n, char* out);
  static int Sleep(sqlite3_vfs* vfs, int micros);
  static int CurrentTime(sqlite3_vfs* vfs, double* out);
  static int GetLastError(sqlite3_vfs* vfs, int n, char* out);
  static int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out);

  // File methods. Version 2: no xFetch, so SQLite never memory-maps the
  // database and every read comes through Read, which sees pending writes.
  static int Close(sqlite3_file* file);
  static int Read(sqlite3_file* file, void* buf, int amt, sqlite3_int64 offset);
  static int Write(sqlite3_file* file, const void* buf, int amt, sqlite3_int64 offset);
  static int Truncate(sqlite3_file* file, sqlite3_int64 size);
  static int Sync(sqlite3_file* file, int flags);
  static int FileSize(sqlite3_file* file, sqlite3_int64* size);
  static int Lock(sqlite3_file* file, int level);
  static int Unlock(sqlite3_file* file, int level);
  static int CheckReservedLock(sqlite3_file* file, int* out);
  static int FileControl(sqlite3_file* file, int op, void* arg);
  static int SectorSize(sqlite3_file* file);
  static int DeviceCharacteristics(sqlite3_file* file);
  static int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out);
  static int ShmLock(sqlite3_file* file, int offset, int n, int flags);
  static void ShmBarrier(sqlite3_file* file);
  static int ShmUnmap(sqlite3_file* file, int delete_flag);

  static const sqlite3_io_methods kMethods;

  const std::string name_;
  sqlite3_vfs* const real_;
  sqlite3_vfs vfs_{};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool power_on_ = true;
  uint64_t countdown_ = 0;  // 0 = no cut armed
  PowerCutMode armed_mode_ = PowerCutMode::kDropUnsynced;
  uint32_t armed_seed_ = 0;
  DiskFault fault_ = DiskFault::kNone;
  CrashVfsStats stats_;
  std::map<std::string, FileState> files_;  // by path; nodes never move
};

const sqlite3_io_methods CrashVfs::Disk::kMethods = {
    .iVersion = 2,
    .xClose = Close,
    .xRead = Read,
    .xWrite = Write,
    .xTruncate = Truncate,
    .xSync = Sync,
    .xFileSize = FileSize,
    .xLock = Lock,
    .xUnlock = Unlock,
    .xCheckReservedLock = CheckReservedLock,
    .xFileControl = FileControl,
    .xSectorSize = SectorSize,
    .xDeviceCharacteristics = DeviceCharacteristics,
    .xShmMap = ShmMap,
    .xShmLock = ShmLock,
    .xShmBarrier = ShmBarrier,
    .xShmUnmap = ShmUnmap,
    .xFetch = nullptr,
    .xUnfetch = nullptr,
};

CrashVfs::Disk::Disk(std::string name) : name_(std::move(name)), real_(sqlite3_vfs_find("unix")) {
  if (real_ == nullptr) {
    std::fprintf(stderr, "CrashVfs: SQLite has no \"unix\" VFS\n");
    std::abort();
  }
  if (sqlite3_vfs_find(name_.c_str()) != nullptr) {
    std::fprintf(stderr, "CrashVfs: a VFS named %s is already registered\n", name_.c_str());
    std::abort();
  }
  vfs_.iVersion = 2;
  vfs_.szOsFile = static_cast<int>(kRealOffset) + real_->szOsFile;
  vfs_.mxPathname = real_->mxPathname;
  vfs_.zName = name_.c_str();
  vfs_.pAppData = this;
  vfs_.xOpen = Open;
  vfs_.xDelete = Delete;
  vfs_.xAccess = Access;
  vfs_.xFullPathname = FullPathname;
  vfs_.xDlOpen = DlOpen;
  vfs_.xDlError = DlError;
  vfs_.xDlSym = DlSym;
  vfs_.xDlClose = DlClose;
  vfs_.xRandomness = Randomness;
  vfs_.xSleep = Sleep;
  vfs_.xCurrentTime = CurrentTime;
  vfs_.xGetLastError = GetLastError;
  vfs_.xCurrentTimeInt64 = CurrentTimeInt64;
  if (sqlite3_vfs_register(&vfs_, /*makeDflt=*/0) != SQLITE_OK) {
    std::fprintf(stderr, "CrashVfs: cannot register %s\n", name_.c_str());
    std::abort();
  }
}

CrashVfs::Disk::~Disk() {
  {
    std::lock_guard lock(mu_);
    if (power_on_) {
      for (auto& [path, state] : files_) ApplyAllLocked(path, state);
    }
  }
  sqlite3_vfs_unregister(&vfs_);
}

int CrashVfs::Disk::BeforeChangeLocked(const File& f, Change change) {
  const int io_error = change == Change::kSync       ? SQLITE_IOERR_FSYNC
                       : change == Change::kTruncate ? SQLITE_IOERR_TRUNCATE
                                                     : SQLITE_IOERR_WRITE;
  if (!power_on_) return io_error;
  if (f.state != nullptr && countdown_ > 0 && --countdown_ == 0) {
    CutLocked(armed_mode_, armed_seed_);
    return io_error;
  }
  switch (fault_) {
    case DiskFault::kNone:
      break;
    case DiskFault::kDiskFull:
      if (change == Change::kWrite) return SQLITE_FULL;
      break;
    case DiskFault::kIoError:
      return io_error;
    case DiskFault::kSyncError:
      if (change == Change::kSync) return io_error;
      break;
  }
  return SQLITE_OK;
}

void CrashVfs::Disk::CutLocked(PowerCutMode mode, uint32_t seed) {
  power_on_ = false;
  countdown_ = 0;
  std::mt19937 random(seed);
  // How likely one sector of an unsynced write is to have reached the disk.
  std::bernoulli_distribution keep(std::uniform_real_distribution<double>(0.1, 0.9)(random));
  for (auto& [path, state] : files_) {
    for (const PendingOp& op : state.ops) {
      if (!op.truncate) ++stats_.dropped_writes;
      if (mode != PowerCutMode::kTornWrites) continue;
      if (op.truncate) {
        if (keep(random)) WriteThroughLocked(path, state, op, 0, 0);
        continue;
      }
      const int64_t end = op.offset + static_cast<int64_t>(op.data.size());
      for (int64_t from = op.offset; from < end;) {
        const int64_t to = std::min(end, (from / kSectorSize + 1) * kSectorSize);
        if (keep(random)) {
          WriteThroughLocked(path, state, op, from, to);
          ++stats_.torn_sectors_kept;
        } else {
          ++stats_.torn_sectors_dropped;
        }
        from = to;
      }
    }
    state.Clear();
  }
  cv_.notify_all();
}

int CrashVfs::Disk::WriteThroughLocked(const std::string& path, FileState& state,
                                       const PendingOp& op, int64_t from, int64_t to) {
  if (!state.handles.empty()) {
    sqlite3_file* real = state.handles.front();
    if (op.truncate) return real->pMethods->xTruncate(real, op.offset);
    return real->pMethods->xWrite(real, op.data.data() + (from - op.offset),
                                  static_cast<int>(to - from), from);
  }
  // No handle is open through this VFS. Closing this descriptor drops the
  // process's POSIX locks on the file, which is harmless here: SQLite holds
  // locks only through open handles, and this path has none.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return SQLITE_IOERR_WRITE;
  int rc = SQLITE_OK;
  if (op.truncate) {
    if (::ftruncate(fd, op.offset) != 0) rc = SQLITE_IOERR_TRUNCATE;
  } else {
    const size_t n = static_cast<size_t>(to - from);
    if (::pwrite(fd, op.data.data() + (from - op.offset), n, from) != static_cast<ssize_t>(n)) {
      rc = SQLITE_IOERR_WRITE;
    }
  }
  ::close(fd);
  return rc;
}

int CrashVfs::Disk::ApplyAllLocked(const std::string& path, FileState& state) {
  for (const PendingOp& op : state.ops) {
    const int rc = WriteThroughLocked(path, state, op, op.offset,
                                      op.offset + static_cast<int64_t>(op.data.size()));
    if (rc != SQLITE_OK) return rc;
  }
  state.Clear();
  return SQLITE_OK;
}

int CrashVfs::Disk::Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags,
                         int* out_flags) {
  Disk* disk = Of(vfs);
  File* f = Of(file);
  f->base.pMethods = nullptr;
  std::lock_guard lock(disk->mu_);
  if (!disk->power_on_) return SQLITE_CANTOPEN;
  auto* real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
  const int rc = disk->real_->xOpen(disk->real_, name, real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (real->pMethods != nullptr) real->pMethods->xClose(real);
    return rc;
  }
  f->disk = disk;
  f->real = real;
  f->state = nullptr;
  if (name != nullptr && (flags & kDurableFiles) != 0) {
    FileState& state = disk->files_[name];
    state.open_flags = flags;
    state.handles.push_back(real);
    f->state = &state;
  }
  f->base.pMethods = &kMethods;
  return SQLITE_OK;
}

int CrashVfs::Disk::Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  Disk* disk = Of(vfs);
  std::lock_guard lock(disk->mu_);
  if (!disk->power_on_) return SQLITE_IOERR_DELETE;
  if (auto it = disk->files_.find(name); it != disk->files_.end()) {
    it->second.Clear();
    if (it->second.handles.empty()) disk->files_.erase(it);
  }
  return disk->real_->xDelete(disk->real_, name, sync_dir);
}

int CrashVfs::Disk::Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  sqlite3_vfs* real = Of(vfs)->real_;
  return real->xAccess(real, name, flags, out);
}

int CrashVfs::Disk::FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  sqlite3_vfs* real = Of(vfs)->real_;
  return real->xFullPathname(real, name, n, out);
}

void* CrashVfs::Disk::DlOpen(sqlite3_vfs* vfs, const char* name) {
  sqlite3_vfs* real = Of(vfs)->real_;
  return real->xDlOpen(real, name);
}

void CrashVfs::Disk::DlError(sqlite3_vfs* vfs, int n, char* out) {
  sqlite3_vfs* real = Of(vfs)->real_;
  real->xDlError(real, n, out);
}

void (*CrashVfs::Disk::DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  sqlite3_vfs* real = Of(vfs)->real_;
  return real->xDlSym(real, handle, symbol);
}

void CrashVfs::Disk::DlClose(sqlite3_vfs* vfs, void* handle) {
  sqlite3_vfs* real = Of(vfs)->real_;
  real->xDlClose(real, handle);
}

int CrashVfs::Disk::Randomness(sqlite3_vfs* vfs, int n, char* out) {
  sqlite3_vfs* real = Of(vfs)->real_;
  return real->xRandomness(real, n, out);
}

int CrashVfs::Disk::Sleep(sqlite3_vfs* vfs, int micros) {
  sqlite3_vfs* real = Of(vfs)->real_;
  return real->xSleep(real, micros);
}

int CrashVfs::Disk::CurrentTime(sqlite3_vfs* vfs, double* out) {
  sqlite3_vfs* real = Of(vfs)->real_;
  return real->xCurrentTime(real, out);
}

int CrashVfs::Disk::GetLastError(sqlite3_vfs* vfs, int n, char* out) {
  sqlite3_vfs* real = Of(vfs)->real_;
  return real->xGetLastError(real, n, out);
}

int CrashVfs::Disk::CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  sqlite3_vfs* real = Of(vfs)->real_;
  return real->xCurrentTimeInt64(real, out);
}

int CrashVfs::Disk::Close(sqlite3_file* file) {
  File* f = Of(file);
  std::lock_guard lock(f->disk->mu_);
  if (f->state != nullptr) {
    std::erase(f->state->handles, f->real);
  }
  return f->real->pMethods->xClose(f->real);
}

int CrashVfs::Disk::Read(sqlite3_file* file, void* buf, int amt, sqlite3_int64 offset) {
  File* f = Of(file);
  std::lock_guard lock(f->disk->mu_);
  if (!f->disk->power_on_) return SQLITE_IOERR_READ;
  const int rc = f->real->pMethods->xRead(f->real, buf, amt, offset);
  if (f->state == nullptr || f->state->ops.empty()) return rc;
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
  return f->state->Overlay(static_cast<char*>(buf), amt, offset);
}

int CrashVfs::Disk::Write(sqlite3_file* file, const void* buf, int amt, sqlite3_int64 offset) {
  File* f = Of(file);
  Disk* disk = f->disk;
  std::lock_guard lock(disk->mu_);
  if (int rc = disk->BeforeChangeLocked(*f, Change::kWrite); rc != SQLITE_OK) return rc;
  if (f->state == nullptr) return f->real->pMethods->xWrite(f->real, buf, amt, offset);
  FileState& state = *f->state;
  if (state.ops.empty()) {
    sqlite3_int64 size = 0;
    if (int rc = f->real->pMethods->xFileSize(f->real, &size); rc != SQLITE_OK) return rc;
    state.size = size;
  }
  ++disk->stats_.writes;
  state.AddWrite(offset, std::string(static_cast<const char*>(buf), static_cast<size_t>(amt)));
  return SQLITE_OK;
}

int CrashVfs::Disk::Truncate(sqlite3_file* file, sqlite3_int64 size) {
  File* f = Of(file);
  Disk* disk = f->disk;
  std::lock_guard lock(disk->mu_);
  if (int rc = disk->BeforeChangeLocked(*f, Change::kTruncate); rc != SQLITE_OK) return rc;
  if (f->state == nullptr) return f->real->pMethods->xTruncate(f->real, size);
  f->state->AddTruncate(size);
  return SQLITE_OK;
}

int CrashVfs::Disk::Sync(sqlite3_file* file, int /*flags*/) {
  File* f = Of(file);
  Disk* disk = f->disk;
  std::lock_guard lock(disk->mu_);
  if (int rc = disk->BeforeChangeLocked(*f, Change::kSync); rc != SQLITE_OK) return rc;
  // The real fsync is skipped: see the header.
  if (f->state == nullptr) return SQLITE_OK;
  for (const PendingOp& op : f->state->ops) {
    const int rc = op.truncate
                       ? f->real->pMethods->xTruncate(f->real, op.offset)
                       : f->real->pMethods->xWrite(f->real, op.data.data(),
                                                   static_cast<int>(op.data.size()), op.offset);
    if (rc != SQLITE_OK) return rc;
  }
  f->state->Clear();
  ++disk->stats_.syncs;
  return SQLITE_OK;
}

int CrashVfs::Disk::FileSize(sqlite3_file* file, sqlite3_int64* size) {
  File* f = Of(file);
  std::lock_guard lock(f->disk->mu_);
  if (!f->disk->power_on_) return SQLITE_IOERR_FSTAT;
  if (f->state != nullptr && !f->state->ops.empty()) {
    *size = f->state->size;
    return SQLITE_OK;
  }
  return f->real->pMethods->xFileSize(f->real, size);
}

int CrashVfs::Disk::Lock(sqlite3_file* file, int level) {
  File* f = Of(file);
  {
    std::lock_guard lock(f->disk->mu_);
    if (!f->disk->power_on_) return SQLITE_IOERR_LOCK;
  }
  return f->real->pMethods->xLock(f->real, level);
}

int CrashVfs::Disk::Unlock(sqlite3_file* file, int level) {
  File* f = Of(file);
  return f->real->pMethods->xUnlock(f->real, level);
}

int CrashVfs::Disk::CheckReservedLock(sqlite3_file* file, int* out) {
  File* f = Of(file);
  {
    std::lock_guard lock(f->disk->mu_);
    if (!f->disk->power_on_) return SQLITE_IOERR_CHECKRESERVEDLOCK;
  }
  return f->real->pMethods->xCheckReservedLock(f->real, out);
}

int CrashVfs::Disk::FileControl(sqlite3_file* file, int op, void* arg) {
  File* f = Of(file);
  return f->real->pMethods->xFileControl(f->real, op, arg);
}

int CrashVfs::Disk::SectorSize(sqlite3_file* file) {
  File* f = Of(file);
  return f->real->pMethods->xSectorSize(f->real);
}

int CrashVfs::Disk::DeviceCharacteristics(sqlite3_file* file) {
  // Passed through: "unix" claims powersafe overwrite, and the torn mode
  // honours it by tearing only the bytes a write covered.
  File* f = Of(file);
  return f->real->pMethods->xDeviceCharacteristics(f->real);
}

int CrashVfs::Disk::ShmMap(sqlite3_file* file, int region, int size, int extend,
                           void volatile** out) {
  File* f = Of(file);
  {
    std::lock_guard lock(f->disk->mu_);
    if (!f->disk->power_on_) return SQLITE_IOERR_SHMMAP;
  }
  return f->real->pMethods->xShmMap(f->real, region, size, extend, out);
}

int CrashVfs::Disk::ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  File* f = Of(file);
  return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

void CrashVfs::Disk::ShmBarrier(sqlite3_file* file) {
  File* f = Of(file);
  f->real->pMethods->xShmBarrier(f->real);
}

int CrashVfs::Disk::ShmUnmap(sqlite3_file* file, int delete_flag) {
  File* f = Of(file);
  return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

CrashVfs::CrashVfs(std::string name) : disk_(std::make_unique<Disk>(std::move(name))) {}

CrashVfs::~CrashVfs() = default;

const std::string& CrashVfs::name() const { return disk_->name(); }

void CrashVfs::CutPower(PowerCutMode mode, uint32_t seed) { disk_->CutPower(mode, seed); }

void CrashVfs::CutPowerAt(uint64_t io_count, PowerCutMode mode, uint32_t seed) {
  disk_->CutPowerAt(io_count, mode, seed);
}

bool CrashVfs::WaitForPowerCut(std::chrono::milliseconds timeout) {
  return disk_->WaitForPowerCut(timeout);
}

bool CrashVfs::power_on() const { return disk_->power_on(); }

void CrashVfs::SetFault(DiskFault fault) { disk_->SetFault(fault); }

CrashVfsStats CrashVfs::stats() const { return disk_->stats(); }

}  // namespace pdkarchive::testing
