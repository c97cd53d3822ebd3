//! Kernel parameter blocks, shared with the device crate.
//!
//! The definitions live in `kernels/src/params.rs` and are compiled on both sides, so host
//! and device agree on every field by construction; this module adds the host-side traits
//! (`Copy`, `Debug`, `Default`, cudarc's `DeviceRepr`) and checks the layout.

include!("../../kernels/src/params.rs");

macro_rules! host_impls {
    ($($t:ident),* $(,)?) => {$(
        impl Clone for $t {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl Copy for $t {}
        impl Default for $t {
            fn default() -> Self {
                // SAFETY: a parameter block is plain u32/f32 fields; all-zero is a valid value.
                unsafe { std::mem::zeroed() }
            }
        }
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // Field names are not reachable without derives; the raw words suffice for logs.
                let words: &[u32] = as_words(self);
                write!(f, "{}{:?}", stringify!($t), words)
            }
        }
        // SAFETY: `#[repr(C)]`, only u32/f32 fields, passed by value as a kernel parameter.
        unsafe impl cudarc::driver::DeviceRepr for $t {}
    )*};
}

fn as_words<T>(v: &T) -> &[u32] {
    // SAFETY: every block is made of 4-byte fields (checked by the layout test), so it is
    // a valid, aligned [u32] of size_of::<T>() / 4 elements.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u32, std::mem::size_of::<T>() / 4) }
}

host_impls!(
    ConvParams,
    GemmParams,
    PoolParams,
    EltwiseParams,
    ChannelAffineParams,
    LrnParams,
    SoftmaxParams,
    ConcatParams,
    ConvertParams
);

/// Every block's name and size in bytes, for the PTX `.param` check.
pub const SIZES: &[(&str, usize)] = &[
    ("ConvParams", std::mem::size_of::<ConvParams>()),
    ("GemmParams", std::mem::size_of::<GemmParams>()),
    ("PoolParams", std::mem::size_of::<PoolParams>()),
    ("EltwiseParams", std::mem::size_of::<EltwiseParams>()),
    ("ChannelAffineParams", std::mem::size_of::<ChannelAffineParams>()),
    ("LrnParams", std::mem::size_of::<LrnParams>()),
    ("SoftmaxParams", std::mem::size_of::<SoftmaxParams>()),
    ("ConcatParams", std::mem::size_of::<ConcatParams>()),
    ("ConvertParams", std::mem::size_of::<ConvertParams>()),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn blocks_are_packed_4_byte_words_in_multiples_of_8() {
        for (name, size) in SIZES {
            assert_eq!(size % 8, 0, "{name} is {size} bytes");
        }
        assert_eq!(align_of::<ConvParams>(), 4);
        // Counted from the definitions: 20 words, 14, 18, 4, 6, 8, 2, 6, 4.
        assert_eq!(size_of::<ConvParams>(), 80);
        assert_eq!(size_of::<GemmParams>(), 56);
        assert_eq!(size_of::<PoolParams>(), 72);
        assert_eq!(size_of::<EltwiseParams>(), 16);
        assert_eq!(size_of::<ChannelAffineParams>(), 24);
        assert_eq!(size_of::<LrnParams>(), 32);
        assert_eq!(size_of::<SoftmaxParams>(), 8);
        assert_eq!(size_of::<ConcatParams>(), 24);
        assert_eq!(size_of::<ConvertParams>(), 16);
        assert_eq!(offset_of!(ConvParams, groups), 15 * 4);
        assert_eq!(offset_of!(ConvParams, act_max), 19 * 4);
    }

    #[test]
    fn debug_shows_the_words() {
        let p = SoftmaxParams { rows: 3, cols: 1000 };
        assert_eq!(format!("{p:?}"), "SoftmaxParams[3, 1000]");
    }
}
