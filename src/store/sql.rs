//! Shared by the SQL backends: the validated table prefix.

/// A table-name prefix for the SQL stores (default `twilio_`), validated so it cannot inject SQL:
/// 1 to 32 characters, ASCII letters, digits and `_`, not starting with a digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePrefix(String);

impl TablePrefix {
    /// Validates a prefix.
    ///
    /// # Errors
    /// [`super::StoreError::Config`] when the prefix is empty, too long or has other characters.
    pub fn new(prefix: impl Into<String>) -> Result<Self, super::StoreError> {
        let p = prefix.into();
        let ok = !p.is_empty()
            && p.len() <= 32
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !p.as_bytes()[0].is_ascii_digit();
        if ok {
            Ok(Self(p))
        } else {
            Err(super::StoreError::Config(
                "table prefix must be 1-32 ASCII letters, digits or '_', not starting with a digit"
                    .into(),
            ))
        }
    }

    /// The prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TablePrefix {
    fn default() -> Self {
        Self("twilio_".into())
    }
}
