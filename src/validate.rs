//! Field validation shared by services. Each check pushes a [`FieldError`] instead of failing fast,
//! so one response lists every problem of an input.

use crate::error::{FieldError, UserErrorCode};

/// Collects field errors of one input.
#[derive(Default, Debug)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    /// Records an error on `field`.
    pub fn add(&mut self, field: &str, code: UserErrorCode, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    /// `Err(Validation)` when any error was recorded.
    pub fn finish(self) -> crate::error::AppResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(crate::error::AppError::Validation(self.0))
        }
    }

    /// Trims a required text; records `REQUIRED` or `TOO_LONG`.
    pub fn required_text(&mut self, field: &str, value: &str, max: usize) -> String {
        let value = value.trim();
        if value.is_empty() {
            self.add(
                field,
                UserErrorCode::Required,
                format!("{field} must not be empty"),
            );
        } else if value.chars().count() > max {
            self.add(
                field,
                UserErrorCode::TooLong,
                format!("{field} must be at most {max} characters"),
            );
        }
        value.to_string()
    }

    /// Trims an optional text; empty becomes `None`.
    pub fn optional_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<String> {
        let value = value.map(str::trim).filter(|v| !v.is_empty())?;
        if value.chars().count() > max {
            self.add(
                field,
                UserErrorCode::TooLong,
                format!("{field} must be at most {max} characters"),
            );
        }
        Some(value.to_string())
    }

    /// Normalises an email address to lower case; records `INVALID` when it is not RFC 5322 valid.
    pub fn email(&mut self, field: &str, value: &str) -> String {
        let value = value.trim();
        if value.len() > 254
            || !email_address::EmailAddress::is_valid(value)
            || !value.contains('.')
        {
            self.add(
                field,
                UserErrorCode::Invalid,
                format!("{value:?} is not a valid email address"),
            );
        }
        value.to_lowercase()
    }

    /// Checks an E.164 phone number (`+` then 8 to 15 digits).
    pub fn phone(&mut self, field: &str, value: &str) -> String {
        let value = value.trim();
        if !is_e164(value) {
            self.add(
                field,
                UserErrorCode::Invalid,
                format!("{value:?} is not an E.164 phone number such as +14155550100"),
            );
        }
        value.to_string()
    }

    /// Checks an IANA timezone name.
    pub fn timezone(&mut self, field: &str, value: &str) -> String {
        let value = value.trim();
        if value.parse::<chrono_tz::Tz>().is_err() {
            self.add(
                field,
                UserErrorCode::Invalid,
                format!("{value:?} is not an IANA timezone"),
            );
        }
        value.to_string()
    }

    /// Checks a BCP 47 language tag of the common shapes (`en`, `en-US`, `zh-Hant-TW`).
    pub fn locale(&mut self, field: &str, value: &str) -> String {
        let value = value.trim();
        if !is_locale(value) {
            self.add(
                field,
                UserErrorCode::Invalid,
                format!("{value:?} is not a locale such as en-US"),
            );
        }
        value.to_string()
    }

    /// Checks an absolute http(s) URL.
    pub fn url(&mut self, field: &str, value: &str) -> String {
        let value = value.trim();
        let ok = (value.starts_with("https://") || value.starts_with("http://"))
            && value.len() <= 2048
            && !value.contains(char::is_whitespace)
            && value
                .split("://")
                .nth(1)
                .is_some_and(|rest| !rest.is_empty());
        if !ok {
            self.add(
                field,
                UserErrorCode::Invalid,
                format!("{value:?} is not an http(s) URL"),
            );
        }
        value.to_string()
    }
}

/// Whether `value` is an E.164 number.
pub fn is_e164(value: &str) -> bool {
    let Some(digits) = value.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

fn is_locale(value: &str) -> bool {
    let mut parts = value.split('-');
    let Some(language) = parts.next() else {
        return false;
    };
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        assert!(is_e164("+14155550100"));
        assert!(!is_e164("14155550100"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1415555010a"));
        assert!(!is_e164("+1234567"));
    }

    #[test]
    fn locales() {
        assert!(is_locale("en"));
        assert!(is_locale("en-US"));
        assert!(is_locale("zh-Hant-TW"));
        assert!(!is_locale("english!"));
        assert!(!is_locale(""));
        assert!(!is_locale("e"));
    }
}
