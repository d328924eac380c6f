//! The structural bytes of a form body (`&`, `=`, `%`, `+`) as a bit mask, 64 bytes at a time.
//!
//! On x86 with SSE2 (every x86-64) the masks come from byte compares and move-masks through
//! `safe_arch`; elsewhere from word-at-a-time arithmetic. Both give the same masks (tested).

/// Which bytes of a 64-byte window are structural: bit `i` stands for byte `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Masks {
    /// `&` (ends a pair), `=` (the first one of a pair ends its key), `%` or `+` (the string
    /// around it needs decoding): the bytes that the splitting looks at.
    pub(crate) structural: u64,
    /// Some byte is not ASCII.
    pub(crate) non_ascii: bool,
}

impl Masks {
    /// The masks of a window that starts `by` bytes (less than 64) before the one wanted: the
    /// first `by` bytes are dropped, and the top `by` bits are zero (past the body's end).
    pub(crate) fn shifted(self, by: usize) -> Self {
        Self {
            structural: self.structural >> by,
            non_ascii: self.non_ascii,
        }
    }
}

/// The masks of `window`.
#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse2"
))]
#[inline]
pub(crate) fn masks(window: &[u8; 64]) -> Masks {
    use safe_arch::{bitor_m128i, load_unaligned_m128i, move_mask_i8_m128i, zeroed_m128i};
    let mut structural = 0;
    let mut any = zeroed_m128i();
    let mut shift = 0;
    for chunk in window.as_chunks::<16>().0 {
        let v = load_unaligned_m128i(chunk);
        // A move-mask is 16 bits in a non-negative `i32`.
        let bits = move_mask_i8_m128i(matching(v, [b'&', b'=', b'%', b'+'])).unsigned_abs();
        structural |= u64::from(bits) << shift;
        any = bitor_m128i(any, v);
        shift += 16;
    }
    Masks {
        structural,
        non_ascii: move_mask_i8_m128i(any) != 0,
    }
}

/// `0xFF` in every byte of `v` equal to one of `bytes`, `0` in the others.
#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse2"
))]
#[inline(always)]
fn matching<const N: usize>(v: safe_arch::m128i, bytes: [u8; N]) -> safe_arch::m128i {
    use safe_arch::{bitor_m128i, cmp_eq_mask_i8_m128i, set_splat_i8_m128i, zeroed_m128i};
    bytes.iter().fold(zeroed_m128i(), |found, &b| {
        let splat = set_splat_i8_m128i(i8::from_ne_bytes([b]));
        bitor_m128i(found, cmp_eq_mask_i8_m128i(v, splat))
    })
}

/// Bit `i` stands for byte `i` of `bytes` being `%`, `+` or not ASCII: what stops a string
/// from being copied as it is.
#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse2"
))]
#[inline]
pub(crate) fn special16(bytes: &[u8; 16]) -> u32 {
    use safe_arch::{load_unaligned_m128i, move_mask_i8_m128i};
    let v = load_unaligned_m128i(bytes);
    // Move-masks are 16 bits in a non-negative `i32`.
    (move_mask_i8_m128i(matching(v, [b'%', b'+'])) | move_mask_i8_m128i(v)).unsigned_abs()
}

/// The masks of `window`.
#[cfg(not(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse2"
)))]
#[inline]
pub(crate) fn masks(window: &[u8; 64]) -> Masks {
    portable_masks(window)
}

/// Bit `i` stands for byte `i` of `bytes` being `%`, `+` or not ASCII.
#[cfg(not(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse2"
)))]
#[inline]
pub(crate) fn special16(bytes: &[u8; 16]) -> u32 {
    portable_special16(bytes)
}

/// 0x80 in every byte of `word` equal to `byte` (exactly: no carry crosses a byte).
const fn equal(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = word ^ (ONES * byte as u64);
    !((x & !HIGH).wrapping_add(!HIGH) | x) & HIGH
}

/// The high bit of byte `i` of `high` (only high bits set) as bit `i`: the products land on
/// distinct bits.
const fn gather(high: u64) -> u64 {
    (high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// The masks of `window`, eight bytes at a time in plain integer arithmetic.
#[cfg_attr(
    all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse2"
    ),
    allow(dead_code)
)]
fn portable_masks(window: &[u8; 64]) -> Masks {
    let mut masks = Masks::default();
    let mut any = 0;
    let mut shift = 0;
    for chunk in window.as_chunks::<8>().0 {
        let word = u64::from_le_bytes(*chunk);
        let found = equal(word, b'&') | equal(word, b'=') | equal(word, b'%') | equal(word, b'+');
        masks.structural |= gather(found) << shift;
        any |= word;
        shift += 8;
    }
    masks.non_ascii = any & 0x8080_8080_8080_8080 != 0;
    masks
}

/// [`special16`] in plain integer arithmetic.
#[cfg_attr(
    all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse2"
    ),
    allow(dead_code)
)]
fn portable_special16(bytes: &[u8; 16]) -> u32 {
    let mut special = 0;
    let mut shift = 0;
    for chunk in bytes.as_chunks::<8>().0 {
        let word = u64::from_le_bytes(*chunk);
        let found = equal(word, b'%') | equal(word, b'+') | word & 0x8080_8080_8080_8080;
        special |= gather(found) << shift;
        shift += 8;
    }
    // 16 bits.
    u32::try_from(special).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The masks byte by byte, the obvious way.
    fn reference(window: &[u8; 64]) -> Masks {
        let mut masks = Masks::default();
        for (i, &b) in window.iter().enumerate() {
            if matches!(b, b'&' | b'=' | b'%' | b'+') {
                masks.structural |= 1u64 << i;
            }
            masks.non_ascii |= !b.is_ascii();
        }
        masks
    }

    #[test]
    fn every_byte_value_in_every_position() {
        for value in 0..=255u8 {
            for position in 0..64 {
                let mut window = [b'a'; 64];
                window[position] = value;
                window[63 - position] = value ^ 0x80;
                assert_eq!(masks(&window), reference(&window), "{value} at {position}");
                assert_eq!(portable_masks(&window), reference(&window));
            }
        }
    }

    #[test]
    fn special_bytes_of_sixteen() {
        for value in 0..=255u8 {
            for position in 0..16 {
                let mut bytes = [b'a'; 16];
                bytes[position] = value;
                let want = if matches!(value, b'%' | b'+') || !value.is_ascii() {
                    1 << position
                } else {
                    0
                };
                assert_eq!(special16(&bytes), want, "{value} at {position}");
                assert_eq!(portable_special16(&bytes), want, "{value} at {position}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        #[test]
        fn same_masks_as_byte_by_byte(bytes in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(b"&=+%\x80\xff\0a".to_vec()),
                proptest::num::u8::ANY,
            ],
            64,
        )) {
            let mut window = [0u8; 64];
            window.copy_from_slice(&bytes);
            proptest::prop_assert_eq!(masks(&window), reference(&window));
            proptest::prop_assert_eq!(portable_masks(&window), reference(&window));
        }
    }
}
