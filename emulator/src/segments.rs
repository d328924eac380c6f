//! How many SMS segments a body takes: GSM-7 (160/153 septets) or UCS-2 (70/67 code units).

/// The GSM 03.38 basic character set (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM 03.38 extension table (an escape septet plus one: two septets each).
const GSM7_EXTENSION: &str = "\u{000C}^{}\\[~]|€";

/// Septets of one character in GSM-7, or `None` when it needs UCS-2.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Packs units into segments of `multi` capacity without splitting a character, after checking
/// whether everything fits in one segment of `single`.
fn pack(costs: &[usize], single: usize, multi: usize) -> u32 {
    let total: usize = costs.iter().sum();
    if total <= single {
        return 1;
    }
    let mut segments = 1u32;
    let mut used = 0usize;
    for &cost in costs {
        if used + cost > multi {
            segments = segments.saturating_add(1);
            used = 0;
        }
        used += cost;
    }
    segments
}

/// The number of segments Twilio would bill for `body`: GSM-7 when every character is in the
/// GSM 03.38 tables (extension characters count two septets), UCS-2 otherwise (characters outside
/// the BMP count two code units). An empty body is one segment.
pub(crate) fn count(body: &str) -> u32 {
    let gsm: Option<Vec<usize>> = body.chars().map(gsm7_septets).collect();
    match gsm {
        Some(costs) => pack(&costs, 160, 153),
        None => {
            let costs: Vec<usize> = body.chars().map(char::len_utf16).collect();
            pack(&costs, 70, 67)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn gsm7_limits() {
        assert_eq!(count(""), 1);
        assert_eq!(count(&"a".repeat(160)), 1);
        assert_eq!(count(&"a".repeat(161)), 2);
        assert_eq!(count(&"a".repeat(306)), 2);
        assert_eq!(count(&"a".repeat(307)), 3);
    }

    #[test]
    fn extension_characters_count_two() {
        assert_eq!(count(&"€".repeat(80)), 1);
        assert_eq!(count(&"€".repeat(81)), 2);
        // 152 septets then a two-septet character: it moves whole to the next segment.
        let body = format!("{}{}", "a".repeat(152), "[".repeat(5));
        assert_eq!(count(&body), 2);
    }

    #[test]
    fn ucs2_limits() {
        assert_eq!(count(&"é".repeat(200)), 2, "é is GSM-7");
        assert_eq!(count(&"ж".repeat(70)), 1);
        assert_eq!(count(&"ж".repeat(71)), 2);
        assert_eq!(count(&"ж".repeat(134)), 2);
        assert_eq!(count(&"ж".repeat(135)), 3);
        // An emoji is a surrogate pair: 35 of them fill one segment exactly.
        assert_eq!(count(&"😀".repeat(35)), 1);
        assert_eq!(count(&"😀".repeat(36)), 2);
    }
}
