//! Wall-clock and per-thread CPU time.
//!
//! The machine this runs on is shared: other processes take turns on the
//! benchmark's core, which inflates wall-clock times by however long they
//! ran. The thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) counts only the
//! time this thread was on the CPU, so it is the primary figure; wall time
//! is reported beside it. (Cache and memory-bandwidth contention from the
//! other core still shows in both.)

use std::time::Instant;

/// A point in time on both clocks.
#[derive(Clone, Copy)]
pub struct Stamp {
    wall: Instant,
    cpu: f64,
}

/// Seconds elapsed on both clocks.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub wall: f64,
    pub cpu: f64,
}

/// This thread's CPU time, in seconds.
pub fn thread_cpu() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

pub fn now() -> Stamp {
    Stamp { wall: Instant::now(), cpu: thread_cpu() }
}

impl Stamp {
    pub fn elapsed(&self) -> Sample {
        let cpu = thread_cpu() - self.cpu;
        Sample { wall: self.wall.elapsed().as_secs_f64(), cpu }
    }
}
