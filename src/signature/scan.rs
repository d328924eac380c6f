//! The structural bytes of a form body (`&`, `=`, `%`, `+`) as bit masks, 64 bytes at a time.
//!
//! On x86 with SSE2 (every x86-64) the masks come from byte compares and move-masks through
//! `safe_arch`; elsewhere from word-at-a-time arithmetic. Both give the same masks (tested).

/// Which bytes of a 64-byte window are structural: bit `i` stands for byte `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Masks {
    /// `&`: ends a pair.
    pub(crate) amp: u64,
    /// `=`: the first one of a pair ends its key.
    pub(crate) eq: u64,
    /// `%` or `+`: the string around it needs decoding.
    pub(crate) escape: u64,
    /// Some byte is not ASCII.
    pub(crate) non_ascii: bool,
}

impl Masks {
    /// The masks of a window that starts `by` bytes (less than 64) before the one wanted: the
    /// first `by` bytes are dropped, and the top `by` bits are zero (past the body's end).
    pub(crate) fn shifted(self, by: usize) -> Self {
        Self {
            amp: self.amp >> by,
            eq: self.eq >> by,
            escape: self.escape >> by,
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
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i, zeroed_m128i,
    };
    let splat = |b: u8| set_splat_i8_m128i(i8::from_ne_bytes([b]));
    let (amp, eq, percent, plus) = (splat(b'&'), splat(b'='), splat(b'%'), splat(b'+'));
    let mut masks = Masks::default();
    let mut any = zeroed_m128i();
    let mut shift = 0;
    for chunk in window.as_chunks::<16>().0 {
        let v = load_unaligned_m128i(chunk);
        // A move-mask is 16 bits in a non-negative `i32`.
        let bits = |m| u64::from(move_mask_i8_m128i(m).unsigned_abs()) << shift;
        masks.amp |= bits(cmp_eq_mask_i8_m128i(v, amp));
        masks.eq |= bits(cmp_eq_mask_i8_m128i(v, eq));
        masks.escape |= bits(bitor_m128i(
            cmp_eq_mask_i8_m128i(v, percent),
            cmp_eq_mask_i8_m128i(v, plus),
        ));
        any = bitor_m128i(any, v);
        shift += 16;
    }
    masks.non_ascii = move_mask_i8_m128i(any) != 0;
    masks
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

/// Bit `i` stands for byte `i` of `bytes` being `%`, `+` or not ASCII: what stops a string
/// from being copied as it is.
#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse2"
))]
#[inline]
pub(crate) fn special16(bytes: &[u8; 16]) -> u32 {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let splat = |b: u8| set_splat_i8_m128i(i8::from_ne_bytes([b]));
    let v = load_unaligned_m128i(bytes);
    let escape = bitor_m128i(
        cmp_eq_mask_i8_m128i(v, splat(b'%')),
        cmp_eq_mask_i8_m128i(v, splat(b'+')),
    );
    // Move-masks are 16 bits in a non-negative `i32`.
    (move_mask_i8_m128i(escape) | move_mask_i8_m128i(v)).unsigned_abs()
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

/// [`special16`] in plain integer arithmetic.
#[cfg_attr(
    all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse2"
    ),
    allow(dead_code)
)]
fn portable_special16(bytes: &[u8; 16]) -> u32 {
    let mut window = [0u8; 64];
    if let Some(first) = window.first_chunk_mut::<16>() {
        *first = *bytes;
    }
    let masks = portable_masks(&window);
    let mut high = 0u32;
    for (i, b) in bytes.iter().enumerate() {
        high |= u32::from(!b.is_ascii()) << i;
    }
    (masks.escape as u32 & 0xFFFF) | high
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
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // 0x80 in every byte of `word` equal to `byte` (exactly: no carry crosses a byte).
    let equal = |word: u64, byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        !((x & !HIGH).wrapping_add(!HIGH) | x) & HIGH
    };
    // The high bit of byte `i` becomes bit `i` (the products land on distinct bits).
    let gather = |high: u64| (high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
    let mut masks = Masks::default();
    let mut any = 0;
    let mut shift = 0;
    for chunk in window.as_chunks::<8>().0 {
        let word = u64::from_le_bytes(*chunk);
        masks.amp |= gather(equal(word, b'&')) << shift;
        masks.eq |= gather(equal(word, b'=')) << shift;
        masks.escape |= gather(equal(word, b'%') | equal(word, b'+')) << shift;
        any |= word;
        shift += 8;
    }
    masks.non_ascii = any & HIGH != 0;
    masks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The masks byte by byte, the obvious way.
    fn reference(window: &[u8; 64]) -> Masks {
        let mut masks = Masks::default();
        for (i, &b) in window.iter().enumerate() {
            let bit = 1u64 << i;
            match b {
                b'&' => masks.amp |= bit,
                b'=' => masks.eq |= bit,
                b'%' | b'+' => masks.escape |= bit,
                _ => {}
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
