//! Waking a worker that blocks while idle.
//!
//! A worker with nothing to do may block in `poll(2)` on its ports' sockets (the kernel wakes
//! it when a frame arrives) and on its [`Doorbell`], an eventfd that others signal when they
//! give it work the kernel does not see: another worker handing it a frame, or the control
//! side asking it to stop.
//!
//! No wakeup is lost, and a busy worker costs its producers no system call: the worker
//! announces that it is going to sleep (`asleep`, then a full fence) and looks for work once
//! more before blocking; a producer publishes its work, fences, and signals only when it sees
//! `asleep`. Either the worker sees the work, or the producer sees the flag (the two fences
//! forbid both missing each other).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering, fence};

use crate::port::afxdp::sys;

/// A worker's doorbell (see the module docs).
#[derive(Debug)]
pub struct Doorbell {
    /// `None` when no eventfd could be made: the worker then never blocks, it naps.
    fd: Option<OwnedFd>,
    asleep: AtomicBool,
}

impl Default for Doorbell {
    fn default() -> Self {
        Doorbell { fd: sys::eventfd().ok(), asleep: AtomicBool::new(false) }
    }
}

impl Doorbell {
    /// Wakes the worker if it blocks or is about to. Call after publishing the work; costs a
    /// fence and a load when the worker is awake.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::Relaxed)
            && let Some(fd) = &self.fd
        {
            sys::eventfd_signal(fd.as_fd());
        }
    }

    /// The descriptor to poll, when there is one.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd)
    }

    /// The worker is about to block: after this it must look for work once more.
    pub(crate) fn going_to_sleep(&self) {
        self.asleep.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The worker woke: producers stop signalling, and a pending signal is consumed.
    pub(crate) fn awake(&self) {
        self.asleep.store(false, Ordering::Relaxed);
        if let Some(fd) = &self.fd {
            sys::eventfd_clear(fd.as_fd());
        }
    }
}
