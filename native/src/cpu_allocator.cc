// A caching CPU allocator for libtorch: large blocks are kept after free and handed out
// again for the next request that fits (best fit, at most 2x). Each large block is its own
// anonymous mapping on transparent huge pages; small ones go to malloc.
//
// Why: glibc serves blocks above 32 MB with mmap and returns them with munmap on free, so
// every large intermediate (one BEiT-B attention map is 12x1601x1601 floats = 123 MB) pays
// first-touch page faults again on every op, which are expensive on the small VMs beitseg
// targets (README "Performance"). A forward pass allocates the same sizes over and over,
// so reusing freed blocks removes nearly all of it (the CPU analogue of PyTorch's CUDA caching
// allocator). Cached bytes are capped (BEITSEG_CPU_CACHE_MB, default 4096; 0 disables).
//
// The cache never raises the peak: live + cached bytes stay within the most ever live at once
// (or this request's need, if that is more), so a miss first evicts cached blocks that would
// lift the footprint above what the program itself needed. Without that rule blocks of sizes
// no longer asked for sat on top of the training step's activation peak (README
// "Performance" has the before/after). The price is a few more misses, each a fresh
// block's page faults: BEITSEG_CPU_CACHE_SLACK_MB lets the footprint pass the live peak by
// that much (default 0) for fewer of them.
#include "common.h"

#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace beitseg {

// Whether optional argument i was given (present, neither undefined nor null). Kept per file: a
// change to common.h rebuilds every object.
static bool Given(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && !info[i].IsUndefined() && !info[i].IsNull();
}

namespace {

constexpr size_t kHeader = 64;              // keeps c10's 64-byte data alignment
constexpr size_t kLarge = size_t(1) << 20;  // blocks from 1 MiB are cached
constexpr size_t kHuge = size_t(2) << 20;   // huge-page granularity

struct BlockHeader {
  size_t capacity;  // usable bytes after the header
  bool mapped;      // a large block: its own huge-page mapping, returned to the cache
};

class CachingCpuAllocator final : public c10::Allocator {
 public:
  CachingCpuAllocator(size_t cap_bytes, size_t slack_bytes) : cap_(cap_bytes), slack_(slack_bytes) {}

  // c10::Allocator::allocate lost its const in libtorch 2.3 and copy_data became pure
  // virtual; declaring both allocate overloads (without `override`) and copy_data compiles
  // against either interface: the matching one overrides, the other is an unused overload.
  c10::DataPtr allocate(size_t n) const { return Allocate(n); }
  c10::DataPtr allocate(size_t n) { return Allocate(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }

  static CachingCpuAllocator* instance;

  size_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  struct Usage {
    size_t live, cached, peak_live;
  };
  Usage usage() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {live_ + small_live_.load(), cached_, peak_live_};
  }

 private:
  c10::DataPtr Allocate(size_t n) const {
    void* data = const_cast<CachingCpuAllocator*>(this)->Take(n);
    return {data, data, &Free, c10::Device(c10::DeviceType::CPU)};
  }

  void* Take(size_t n) {
    const bool large = n >= kLarge;
    const size_t capacity = large ? RoundUp(n + kHeader, kHuge) - kHeader : n;
    if (large) {
      // Best fit among cached blocks up to twice the request: the same sizes recur every
      // forward pass, and a larger idle block serving a smaller request keeps the cache (and
      // so the resident memory) from holding one block of every size ever used.
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(capacity);
      if (it != free_.end() && it->first <= 2 * capacity) {
        void* block = it->second;
        cached_ -= it->first;
        Lend(it->first);
        free_.erase(it);
        return static_cast<char*>(block) + kHeader;
      }
      const size_t limit = std::max(peak_live_ + slack_, live_ + capacity);
      while (live_ + cached_ + capacity > limit && !free_.empty()) EvictLargest();
      Lend(capacity);
    }
    void* block = large ? Map(capacity + kHeader) : Malloc(capacity + kHeader);
    if (!block) {
      // Under memory pressure, give the cache back and try once more.
      Trim(0);
      block = large ? Map(capacity + kHeader) : Malloc(capacity + kHeader);
      if (!block) {
        if (large) {
          std::lock_guard<std::mutex> lock(mutex_);
          live_ -= capacity;
        }
        throw std::bad_alloc();
      }
    }
    auto* h = static_cast<BlockHeader*>(block);
    h->capacity = capacity;
    h->mapped = large;
    if (!large) small_live_ += capacity;
    return static_cast<char*>(block) + kHeader;
  }

  static void* Malloc(size_t bytes) {
    void* block = nullptr;
    return posix_memalign(&block, kHeader, bytes) == 0 ? block : nullptr;
  }

  // A large block is its own anonymous mapping, aligned to and a multiple of huge pages:
  // unmapping it returns its memory to the system at once. (Through malloc, blocks below
  // glibc's 32 MB mmap threshold came from the heap, where a freed block in the middle stays
  // resident, so evictions did not lower the RSS.)
  static void* Map(size_t bytes) {
    void* raw = mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = RoundUp(start, kHuge);
    if (aligned > start) munmap(raw, aligned - start);
    const uintptr_t tail = start + kHuge - aligned;  // what is left past aligned + bytes
    if (tail > 0) munmap(reinterpret_cast<void*>(aligned + bytes), tail);
    madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
    return reinterpret_cast<void*>(aligned);
  }

  static void Unmap(void* block, size_t capacity) { munmap(block, capacity + kHeader); }

  static void Free(void* data) {
    if (!data) return;
    void* block = static_cast<char*>(data) - kHeader;
    auto* h = static_cast<BlockHeader*>(block);
    if (!h->mapped) {
      instance->small_live_ -= h->capacity;
      std::free(block);
    } else if (!instance->Keep(block, h->capacity)) {
      Unmap(block, h->capacity);
    }
  }

  // Takes back a large block; false when the caller is to free it instead.
  bool Keep(void* block, size_t capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_ -= capacity;
    if (capacity > cap_) return false;
    while (cached_ + capacity > cap_ && !free_.empty()) EvictLargest();
    free_.emplace(capacity, block);
    cached_ += capacity;
    return true;
  }

  // Counts a large block handed out (the caller holds the lock).
  void Lend(size_t capacity) {
    live_ += capacity;
    peak_live_ = std::max(peak_live_, live_);
  }

  // The largest cached blocks go first: they are the least likely exact matches.
  void EvictLargest() {
    auto last = std::prev(free_.end());
    cached_ -= last->first;
    Unmap(last->second, last->first);
    free_.erase(last);
  }

 public:
  void Trim(size_t keep_bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (cached_ > keep_bytes && !free_.empty()) EvictLargest();
  }

 private:
  static size_t RoundUp(size_t n, size_t m) { return (n + m - 1) / m * m; }

  const size_t cap_;    // most bytes cached
  const size_t slack_;  // how far live + cached may pass the live peak
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;                  // bytes in free_
  size_t live_ = 0;                    // bytes of large blocks handed out and not yet returned
  size_t peak_live_ = 0;               // the most live_ has been
  std::atomic<size_t> small_live_{0};  // bytes of small (malloc) blocks handed out
};

CachingCpuAllocator* CachingCpuAllocator::instance = nullptr;

size_t EnvMegabytes(const char* name, size_t fallback) {
  const char* value = std::getenv(name);
  const size_t mb = value ? static_cast<size_t>(std::strtoull(value, nullptr, 10)) : fallback;
  return std::min(mb, size_t(1) << 30);  // 1 PiB: keeps the sums with it from overflowing
}

}  // namespace

// cpuCache(): bytes held in the cache; cpuCache(true) returns them to the system first.
BEITSEG_OP(cpuCache) {
  const bool release = Given(info, 0) && ArgBool(info, 0);
  if (!CachingCpuAllocator::instance) return Napi::Number::New(env, 0);
  if (release) CachingCpuAllocator::instance->Trim(0);
  return Napi::Number::New(env, static_cast<double>(CachingCpuAllocator::instance->cached_bytes()));
}

// cpuMemory(): what tensors hold on the CPU: bytes lent out by the allocator (null where
// BEITSEG_CPU_CACHE_MB=0 left libtorch's own allocator in place), bytes cached, the most
// large-block bytes ever live at once, and JS tensor handles not yet disposed or collected.
BEITSEG_OP(cpuMemory) {
  Napi::Object out = Napi::Object::New(env);
  auto* allocator = CachingCpuAllocator::instance;
  const auto usage = allocator ? allocator->usage() : CachingCpuAllocator::Usage{0, 0, 0};
  auto bytes = [&](size_t n) { return allocator ? Napi::Number::New(env, double(n)) : env.Null(); };
  out.Set("liveBytes", bytes(usage.live));
  out.Set("cachedBytes", bytes(usage.cached));
  out.Set("peakLargeBytes", bytes(usage.peak_live));
  out.Set("tensorHandles", Napi::Number::New(env, double(TensorHandle::LiveCount())));
  return out;
}

// trimHeap(): hands the free pages inside malloc's heaps back to the system (glibc's
// malloc_trim; false where the C library has none). Small tensors, buffers and image codecs
// allocate from those heaps, and glibc returns freed memory only from a heap's top, so after a
// burst of varied sizes the process keeps tens of MB it no longer uses.
BEITSEG_OP(trimHeap) {
#if defined(__GLIBC__)
  malloc_trim(0);
  return Napi::Boolean::New(env, true);
#else
  return Napi::Boolean::New(env, false);
#endif
}

void InstallCpuAllocator(Napi::Env env, Napi::Object exports) {
  const size_t cap_mb = EnvMegabytes("BEITSEG_CPU_CACHE_MB", 4096);
  const size_t slack_mb = EnvMegabytes("BEITSEG_CPU_CACHE_SLACK_MB", 0);
  if (cap_mb > 0 && !CachingCpuAllocator::instance) {
    // Never destroyed: tensors freed during process exit still call into it.
    CachingCpuAllocator::instance = new CachingCpuAllocator(cap_mb << 20, slack_mb << 20);
    c10::SetCPUAllocator(CachingCpuAllocator::instance, /*priority=*/100);
  }
  BEITSEG_EXPORT(exports, cpuCache);
  BEITSEG_EXPORT(exports, cpuMemory);
  BEITSEG_EXPORT(exports, trimHeap);
}

}  // namespace beitseg
