//! The process environment as the host reads its settings: a variable set
//! to blanks counts as unset, as the OpenTelemetry specification says of its
//! own and as an operator clearing one with `VAR=` means.

/// The value of `name`, if it is set and not blank.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}
