//! Thin safe wrappers over the system calls the engine needs: sockets, socket
//! options, `mmap`, wakeups, CPU pinning, and huge-page advice for the FIB's
//! tables. Every `unsafe` block of the crate that is not about ring memory lives here.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// Plain-old-data types that may be passed to and filled by `setsockopt`,
/// `getsockopt` and `bind`.
///
/// # Safety
/// Implementors must be `repr(C)` kernel ABI structs or integers for which
/// every bit pattern is valid.
pub(crate) unsafe trait Pod: Copy {}
// SAFETY: integers and the `repr(C)` libc ABI structs below accept every bit pattern.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}
// SAFETY: as above.
unsafe impl Pod for libc::xdp_umem_reg {}
// SAFETY: as above.
unsafe impl Pod for libc::xdp_mmap_offsets {}
// SAFETY: as above.
unsafe impl Pod for libc::xdp_statistics {}
// SAFETY: as above.
unsafe impl Pod for libc::xdp_options {}
// SAFETY: as above.
unsafe impl Pod for libc::sockaddr_xdp {}
// SAFETY: as above.
unsafe impl Pod for libc::sockaddr_ll {}
// SAFETY: as above.
unsafe impl Pod for libc::tpacket_req3 {}

/// The interface index of `name`, `ENODEV` when there is none.
pub(crate) fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 { Err(io::Error::last_os_error()) } else { Ok(idx) }
}

/// `socket(2)` with `SOCK_CLOEXEC`.
pub(crate) fn socket(domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(2)` with a value of ABI type `T`.
pub(crate) fn setsockopt<T: Pod>(fd: BorrowedFd<'_>, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of exactly the length passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `getsockopt(2)` into a value of ABI type `T` (zero-initialised first).
pub(crate) fn getsockopt<T: Pod>(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<T> {
    // SAFETY: `T: Pod` accepts the all-zero bit pattern.
    let mut val: T = unsafe { std::mem::zeroed() };
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` is a writable `T` and `len` holds its exact size.
    let rc = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&mut val as *mut T).cast(), &mut len) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(val) }
}

/// `bind(2)` to a socket address of ABI type `T`.
pub(crate) fn bind<T: Pod>(fd: BorrowedFd<'_>, addr: &T) -> io::Result<()> {
    // SAFETY: `addr` points to a live `T` of exactly the length passed.
    let rc =
        unsafe { libc::bind(fd.as_raw_fd(), (addr as *const T).cast(), size_of::<T>() as libc::socklen_t) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Asks the kernel to process the TX ring (`sendto` with no data). Transient
/// conditions (EAGAIN, EBUSY, ENOBUFS, ENETDOWN) are not errors: the next
/// kick retries.
pub(crate) fn kick_tx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a zero-length send with null buffer and address is valid for AF_XDP.
    let rc =
        unsafe { libc::sendto(fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0) };
    if rc >= 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN) => Ok(()),
        _ => Err(e),
    }
}

/// Asks the kernel to process the fill ring (zero-length non-blocking recv).
pub(crate) fn kick_rx(fd: BorrowedFd<'_>) {
    // SAFETY: a zero-length recv with null buffer and address is valid for AF_XDP.
    // The result carries nothing: EAGAIN is the normal answer.
    let _ = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
}

/// Non-blocking `send(2)` of one frame; `Ok(false)` when the socket would block.
pub(crate) fn send(fd: BorrowedFd<'_>, frame: &[u8]) -> io::Result<bool> {
    // SAFETY: `frame` is a live readable slice of the length passed.
    let rc = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), libc::MSG_DONTWAIT) };
    if rc >= 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::ENOBUFS) => Ok(false),
        _ => Err(e),
    }
}

/// Pins the calling thread to CPU `core`.
pub(crate) fn pin_current_thread(core: usize) -> io::Result<()> {
    if core >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` < CPU_SETSIZE was checked above.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Sets the calling thread's timer slack to `ns` nanoseconds: how late the kernel may wake
/// it from a sleep (the default 50 µs would stretch a worker's 1 µs idle naps into 50 µs of
/// latency for the next frame).
pub(crate) fn set_timer_slack(ns: u64) -> io::Result<()> {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long by value and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `eventfd(2)`: counter 0, non-blocking, close-on-exec.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by eventfd(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd's counter, making it readable. A saturated counter (EAGAIN) is
/// already readable, so the result carries nothing.
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: `one` is a live 8-byte buffer, the size eventfd writes take.
    let _ = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
}

/// Resets an eventfd's counter to 0 (a non-blocking read; EAGAIN when it already was).
pub(crate) fn eventfd_clear(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is a live writable 8-byte buffer, the size eventfd reads take.
    let _ = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
}

/// The descriptors a blocked worker waits on for `POLLIN`, prepared once so that waiting
/// allocates nothing. Holds raw descriptor numbers: the owner keeps the descriptors open for
/// as long as it uses the set (a worker builds it from its own ports and drops it first).
#[derive(Debug)]
pub(crate) struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// An empty set with room for `n` descriptors.
    pub(crate) fn with_capacity(n: usize) -> Self {
        PollSet { fds: Vec::with_capacity(n) }
    }

    /// Replaces the set's descriptors with `fds`, in the room it has (allocating only beyond
    /// it); false, leaving the set empty, when one of them is `None`.
    pub(crate) fn replace<'a>(&mut self, fds: impl IntoIterator<Item = Option<BorrowedFd<'a>>>) -> bool {
        self.fds.clear();
        for fd in fds {
            let Some(fd) = fd else {
                self.fds.clear();
                return false;
            };
            self.fds.push(libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        true
    }

    /// `poll(2)`: returns when a descriptor is readable, after `timeout_ms`, or on a signal.
    pub(crate) fn wait(&mut self, timeout_ms: i32) {
        // SAFETY: `fds` is a live array of `len` pollfd structs that poll may write to.
        let _ = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, timeout_ms) };
    }
}

/// A memory mapping, unmapped on drop. Holds a raw pointer: only the ring and
/// UMEM types of this module hand out references into it.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; moving it to another
// thread moves that ownership. Shared access is mediated by the ring types.
unsafe impl Send for Mmap {}

impl Mmap {
    /// Private anonymous memory of `len` bytes, populated up front.
    pub(crate) fn anonymous(len: usize) -> io::Result<Self> {
        // SAFETY: anonymous mapping with no address hint; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::checked(p, len)
    }

    /// A shared mapping of `len` bytes of `fd` at page offset `offset`
    /// (AF_XDP rings, the TPACKET_V3 ring).
    pub(crate) fn shared(fd: BorrowedFd<'_>, len: usize, offset: i64) -> io::Result<Self> {
        // SAFETY: mapping a kernel object through a valid fd; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset,
            )
        };
        Self::checked(p, len)
    }

    fn checked(p: *mut libc::c_void, len: usize) -> io::Result<Self> {
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Mmap { ptr, len })
    }

    /// Base address of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping created by mmap and not yet unmapped;
        // no reference into it outlives `self` (borrows are tied to the owners).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Asks the kernel to back `memory` with transparent huge pages (`MADV_HUGEPAGE`):
/// for the FIB's 64 MiB tbl24, whose random loads otherwise miss the TLB on most
/// lookups. Call it before the memory is first touched, so pages fault in huge.
/// Advisory only: an error (THP disabled, `never` mode) changes nothing else and
/// the caller may ignore it. Only whole pages inside `memory` are advised.
pub(crate) fn advise_huge_pages<T>(memory: &[T]) -> io::Result<()> {
    const PAGE: usize = 4096;
    let start = memory.as_ptr() as usize;
    let end = start + std::mem::size_of_val(memory);
    let first = start.next_multiple_of(PAGE);
    let last = end & !(PAGE - 1);
    if first >= last {
        return Ok(());
    }
    // SAFETY: `first..last` lies inside `memory`, which stays mapped while it is
    // borrowed. MADV_HUGEPAGE only changes how the kernel backs those pages, never
    // their contents or the mapping, so no reference into `memory` is affected.
    let r = unsafe { libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_HUGEPAGE) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}
