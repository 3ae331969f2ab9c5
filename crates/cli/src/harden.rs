//! Process hardening that the no-content-retention invariant needs.
//!
//! Image bytes exist only in the fetcher's bounded buffer. A core dump would
//! write that buffer to disk, and a debugger of the same user could read it
//! from memory; so every hashscan process turns both off before it does
//! anything else. Linux only (the deployment target).

use std::io;

use rustix::process::{set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit};

/// Sets the core-file size limit to zero (soft and hard, so it cannot be
/// raised again) and marks the process not dumpable: no core file, no
/// ptrace attach or `/proc/PID/mem` read by other processes of the user.
pub(crate) fn forbid_core_dumps() -> io::Result<()> {
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_hardening_the_core_limit_is_zero_and_the_process_not_dumpable() {
        forbid_core_dumps().expect("hardening succeeds");
        let limit = rustix::process::getrlimit(Resource::Core);
        assert_eq!((limit.current, limit.maximum), (Some(0), Some(0)));
        assert_eq!(rustix::process::dumpable_behavior().ok(), Some(DumpableBehavior::NotDumpable));
    }
}
