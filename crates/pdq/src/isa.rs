//! Runtime choice of instruction set for the hot loops.
//!
//! Every kernel defined with [`kernel!`] exists twice: for the target's
//! baseline and, on x86-64, for AVX2 (eight-wide vectors, matching the
//! eight lanes of the row passes; about 1.5× faster overall). Both perform
//! the same IEEE operations in the same order; only the vector width
//! differs, and Rust never fuses a multiply and an add on its own (no FMA
//! contraction), so the results are identical; the tests run both.

/// Which instruction set the kernels run with.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Isa {
    /// The target's baseline (SSE2 on x86-64).
    Portable,
    /// AVX2, proven available by the token.
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2Token),
}

/// Proof that the running CPU supports AVX2; only [`Isa::detect`] makes one.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2Token(());

impl Isa {
    /// The best variant the running CPU supports.
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Isa::Avx2(Avx2Token(()));
        }
        Isa::Portable
    }
}

/// Defines `fn $name(isa: Isa, args…)` that runs `$body` compiled for the
/// instruction set `isa` names. Each variant is a separate, non-inlined
/// function, so the compiler optimises every kernel on its own.
macro_rules! kernel {
    (
        $(#[$doc:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$doc])*
        $vis fn $name(isa: $crate::isa::Isa, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body

            #[inline(never)]
            fn portable($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            #[inline(never)]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            match isa {
                $crate::isa::Isa::Portable => portable($($arg),*),
                // SAFETY: `avx2` only requires AVX2, and an `Avx2Token`
                // exists only when the CPU reported it.
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Isa::Avx2(_) => unsafe { avx2($($arg),*) },
            }
        }
    };
}

pub(crate) use kernel;
