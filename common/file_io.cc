#include "common/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace slotguard::common {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

Result<void> WriteAll(int fd, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return MakeError(std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<void> SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return MakeError(Errno("cannot open " + dir));
  const bool ok = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    errno = err;
    return MakeError(Errno("cannot fsync " + dir));
  }
  return {};
}

Result<void> AtomicRewrite(const std::string& path, std::string_view data,
                           const std::string& temp_suffix) {
  const std::string tmp = path + temp_suffix;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError(Errno("cannot write " + tmp));
  auto written = WriteAll(fd, data);
  std::string why = written ? "" : written.error().message;
  if (written && ::fsync(fd) != 0) why = std::strerror(errno);
  ::close(fd);
  if (!why.empty()) {
    ::unlink(tmp.c_str());
    return MakeError("cannot write " + tmp + ": " + why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string e = Errno("cannot rename " + tmp + " to " + path);
    ::unlink(tmp.c_str());
    return MakeError(e);
  }
  // The rename is durable only once the directory entry is.
  std::string dir = std::filesystem::path(path).parent_path().string();
  return SyncDir(dir.empty() ? "." : dir);
}

}  // namespace slotguard::common
