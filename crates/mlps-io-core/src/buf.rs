//! Aligned I/O buffers and a reusable pool (no allocation on the hot path).
//!
//! Pools of large buffers live in anonymous mappings advised `MADV_HUGEPAGE`. Why: an `O_DIRECT`
//! request needs one device segment per physically contiguous run of its buffer. A 1 MiB buffer of
//! scattered 4 KiB pages is 256 segments; virtio-blk allows 254, so every such read or write split
//! into two device requests (measured: 2048 requests of 512 KiB avg for 1 GiB, fio the same). A
//! buffer inside one transparent huge page is one segment and one request.
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Default alignment: 4 KiB satisfies O_DIRECT on every common Linux filesystem and page-size mmap.
pub const DEFAULT_ALIGN: usize = 4096;

static NEXT_POOL_ID: AtomicU32 = AtomicU32::new(1);

/// Size of a transparent huge page on x86-64 and arm64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;
/// A pool holding at least this much in all shares one huge-page mapping (rounding it up to 2 MiB
/// at most doubles it).
const MAPPED_MIN_POOL_TOTAL: usize = 1 << 20;
/// Pool buffers at least this large can share one huge-page mapping (smaller ones span few pages).
const MAPPED_MIN_POOLED: usize = 64 << 10;

/// An anonymous mapping aligned to [`HUGE_PAGE`], advised `MADV_HUGEPAGE`, unmapped on drop.
struct HugeRegion {
    base: NonNull<u8>,
    len: usize,
    huge_advised: bool,
}

// SAFETY: the region is plain memory; buffers carved from it never overlap, and the mapping
// itself is only unmapped in Drop, after every buffer holding an Arc to it is gone.
unsafe impl Send for HugeRegion {}
// SAFETY: as above; the region itself is never written through a shared reference.
unsafe impl Sync for HugeRegion {}

impl HugeRegion {
    /// At least `len` zeroed bytes, or `None` if the kernel refuses the mapping (the caller then
    /// falls back to the heap).
    fn map(len: usize) -> Option<Self> {
        let len = len.max(1).checked_next_multiple_of(HUGE_PAGE)?;
        let span = len.checked_add(HUGE_PAGE)?;
        // SAFETY: a new private anonymous mapping; no existing memory is affected.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let start = raw as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE);
        let head = aligned - start;
        let tail = span - head - len;
        // SAFETY: both ranges lie inside the mapping created above and outside [aligned, +len).
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap((aligned + len) as *mut libc::c_void, tail);
            }
        }
        // SAFETY: advice on our own mapping; EINVAL (THP compiled out or disabled) leaves
        // ordinary pages, which still work.
        let huge_advised =
            unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE) } == 0;
        Some(Self {
            base: NonNull::new(aligned as *mut u8)?,
            len,
            huge_advised,
        })
    }
}

impl Drop for HugeRegion {
    fn drop(&mut self) {
        // SAFETY: base/len is exactly the mapping kept in `map`; no buffer refers to it any more.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// Where a buffer's bytes live.
enum Backing {
    /// The global allocator, with layout (capacity, align).
    Heap,
    /// A slice of a huge-page mapping, shared by the buffers of one pool.
    Mapped(Arc<HugeRegion>),
}

/// Identity of a buffer that belongs to a [`BufferPool`] (used by engines that register buffers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufTag {
    /// Unique id of the pool (process-wide).
    pub pool: u32,
    /// Index of the buffer inside its pool.
    pub index: u32,
}

/// A heap buffer whose start address and capacity are multiples of `align` (a power of two).
///
/// `len()` is the number of valid bytes (what a read filled or a write will send); `capacity()` is fixed.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
    align: usize,
    tag: Option<BufTag>,
    backing: Backing,
}

// SAFETY: AlignedBuf owns its allocation exclusively (like Vec<u8>); no interior sharing.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared references only allow reads of the owned bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `capacity` bytes (rounded up to a multiple of `align`), `len() == capacity`.
    ///
    /// Standalone buffers come from the heap; only [`BufferPool`]s use huge pages. Huge pages for
    /// large standalone buffers made the checkpoint workload's buffered I/O slower (reads ~30 %;
    /// docs/PERFORMANCE.md, "Checkpointing"), for a reason not yet found.
    ///
    /// # Panics
    /// If `align` is not a power of two or the size overflows.
    pub fn new(capacity: usize, align: usize) -> Self {
        assert!(align.is_power_of_two(), "alignment must be a power of two");
        let cap = capacity.max(1).div_ceil(align) * align;
        Self::on_heap(cap, align)
    }

    /// A zeroed heap buffer; `cap` is already a multiple of `align`.
    fn on_heap(cap: usize, align: usize) -> Self {
        let Ok(layout) = Layout::from_size_align(cap, align) else {
            panic!("invalid buffer layout: {cap} bytes aligned to {align}")
        };
        // SAFETY: layout has non-zero size (cap >= align >= 1).
        let raw = unsafe { alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        Self {
            ptr,
            cap,
            len: cap,
            align,
            tag: None,
            backing: Backing::Heap,
        }
    }

    /// Whether the bytes live in a mapping advised `MADV_HUGEPAGE` (the kernel may still back it
    /// with base pages when no huge page is free).
    pub fn huge_page_advised(&self) -> bool {
        matches!(&self.backing, Backing::Mapped(r) if r.huge_advised)
    }

    /// Capacity in bytes (a multiple of [`Self::align`]).
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Number of valid bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// `len() == 0`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Alignment of the start address and of the capacity.
    pub fn align(&self) -> usize {
        self.align
    }
    /// Set the number of valid bytes (bytes keep their old contents).
    ///
    /// # Panics
    /// If `len > capacity()`.
    pub fn set_len(&mut self, len: usize) {
        assert!(len <= self.cap, "len {len} > capacity {}", self.cap);
        self.len = len;
    }
    /// Pool identity, if the buffer came from a [`BufferPool`].
    pub fn tag(&self) -> Option<BufTag> {
        self.tag
    }
    /// Raw pointer to the first byte.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    /// Raw mutable pointer to the first byte.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    /// The whole capacity as a mutable slice (ignores `len`).
    pub fn full_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr is valid for cap bytes, initialised (zeroed at allocation), uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is valid for cap >= len initialised bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}
impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr is valid for cap >= len initialised bytes and uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}
impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if let Backing::Heap = self.backing {
            // SAFETY: allocated in `on_heap` with exactly this layout.
            unsafe {
                dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(self.cap, self.align),
                )
            }
        }
        // Mapped: the region is unmapped when its last Arc (pool buffers share it) drops.
    }
}
impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("cap", &self.cap)
            .field("align", &self.align)
            .field("tag", &self.tag)
            .field("huge_page_advised", &self.huge_page_advised())
            .finish()
    }
}

/// A fixed set of equally sized aligned buffers, allocated once and reused.
///
/// `get` / `put` never allocate. Engines that support registered buffers (io_uring) can register a
/// pool once ([`crate::Engine::register_pool`]) and then use fixed-buffer opcodes for its buffers.
pub struct BufferPool {
    id: u32,
    buf_size: usize,
    align: usize,
    count: usize,
    free: Vec<AlignedBuf>,
    /// (address, capacity) of every buffer, for registration.
    regions: Vec<(usize, usize)>,
}

impl BufferPool {
    /// `count` buffers of `buf_size` bytes (rounded up to `align`), aligned to `align`.
    ///
    /// Buffers of 64 KiB or more, 1 MiB or more in all, are carved one after another from one
    /// huge-page mapping, so a buffer of up to 2 MiB spans at most two physically contiguous runs.
    ///
    /// # Panics
    /// If `align` is not a power of two or the size overflows.
    pub fn new(count: usize, buf_size: usize, align: usize) -> Self {
        assert!(align.is_power_of_two(), "alignment must be a power of two");
        let id = NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed);
        let stride = buf_size.max(1).div_ceil(align) * align;
        let shared = stride
            .checked_mul(count)
            .filter(|&total| {
                stride >= MAPPED_MIN_POOLED && total >= MAPPED_MIN_POOL_TOTAL && align <= HUGE_PAGE
            })
            .and_then(HugeRegion::map)
            .map(Arc::new);
        let mut free = Vec::with_capacity(count);
        let mut regions = Vec::with_capacity(count);
        for i in 0..count {
            let mut b = match &shared {
                Some(region) => AlignedBuf {
                    // SAFETY: i * stride + stride <= count * stride <= region.len, so the pointer
                    // stays inside the mapping; the base is HUGE_PAGE-aligned and stride is a
                    // multiple of align, so the result is align-aligned.
                    ptr: unsafe { region.base.add(i * stride) },
                    cap: stride,
                    len: stride,
                    align,
                    tag: None,
                    backing: Backing::Mapped(Arc::clone(region)),
                },
                None => AlignedBuf::new(buf_size, align),
            };
            b.tag = Some(BufTag {
                pool: id,
                index: i as u32,
            });
            regions.push((b.as_ptr() as usize, b.capacity()));
            free.push(b);
        }
        free.reverse();
        Self {
            id,
            buf_size: stride,
            align,
            count,
            free,
            regions,
        }
    }
    /// Process-unique pool id (matches [`BufTag::pool`]).
    pub fn id(&self) -> u32 {
        self.id
    }
    /// Size of each buffer.
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }
    /// Alignment of each buffer.
    pub fn align(&self) -> usize {
        self.align
    }
    /// Total number of buffers owned by the pool (free or lent out).
    pub fn count(&self) -> usize {
        self.count
    }
    /// Number of buffers currently available.
    pub fn available(&self) -> usize {
        self.free.len()
    }
    /// Take a buffer (len reset to full capacity), or `None` when all are lent out.
    pub fn get(&mut self) -> Option<AlignedBuf> {
        let mut b = self.free.pop()?;
        b.len = b.cap;
        Some(b)
    }
    /// Return a buffer taken from this pool.
    ///
    /// # Panics
    /// If the buffer does not belong to this pool.
    pub fn put(&mut self, buf: AlignedBuf) {
        assert_eq!(
            buf.tag.map(|t| t.pool),
            Some(self.id),
            "buffer returned to the wrong pool"
        );
        self.free.push(buf);
    }
    /// (address, length) of every buffer in index order, for `io_uring_register_buffers`.
    pub fn regions(&self) -> &[(usize, usize)] {
        &self.regions
    }
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("id", &self.id)
            .field("buf_size", &self.buf_size)
            .field("count", &self.count)
            .field("available", &self.free.len())
            .finish()
    }
}
