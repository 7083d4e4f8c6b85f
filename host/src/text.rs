//! Small text helpers every layer uses for messages: cutting guest text to a
//! bound with a visible marker, listing names, and an error with its causes.

/// Cuts `text` to at most `max` bytes on a character boundary, marking the
/// cut so nothing is lost silently. Says whether it cut.
pub(crate) fn cap_text(mut text: String, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let size = text.len();
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!(
        "…[truncated by glassbox: {size} bytes, limit {max}]"
    ));
    (text, true)
}

/// `text` safe to write to a terminal: control characters (escape
/// sequences, carriage returns, newlines, bells) and the bidirectional
/// overrides that reorder what is shown become visible escapes, so text from
/// a guest cannot move the cursor, recolour, or forge lines of its own.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    std::borrow::Cow::Owned(shown)
}

/// `a, b, c`, or `nothing`, for messages.
pub(crate) fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    }
}

/// An error and its causes, on one line, each cause once: many errors
/// already say their cause, which the chain would then repeat.
pub fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// Longest excerpt of a peer's answer quoted in a message.
const MAX_EXCERPT: usize = 300;

/// The start of a peer's answer (a response body), for a message.
pub(crate) fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(MAX_EXCERPT) {
        Some((end, _)) => format!("{}…", &trimmed[..end]),
        None => trimmed.to_owned(),
    }
}

/// A Wasmtime error with its causes, on one line.
pub(crate) fn error_chain(error: &wasmtime::Error) -> String {
    // A trap's Wasm backtrace is many lines of guest internals: kept out of
    // the message, for those who ask for debug logs.
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(ToString::to_string);
    if let Some(backtrace) = &backtrace {
        tracing::debug!("{backtrace}");
    }
    error
        .chain()
        .map(|cause| cause.to_string())
        .filter(|cause| Some(cause) != backtrace.as_ref())
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary_with_a_marker() {
        assert_eq!(cap_text("short".into(), 10), ("short".into(), false));
        let (cut, truncated) = cap_text("ééééé".into(), 5);
        assert!(truncated);
        assert_eq!(cut, "éé…[truncated by glassbox: 10 bytes, limit 5]");
    }

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(printable("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(
            printable("red \u{1b}[31mtext\r\nfake line\u{7}"),
            "red \\u{1b}[31mtext\\r\\nfake line\\u{7}"
        );
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
    }

    #[test]
    fn a_cause_the_error_already_says_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot connect: {0}")]
        struct Says(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("cannot load")]
        struct Hides(#[source] std::io::Error);
        let refused = || std::io::Error::other("refused");
        assert_eq!(cause_chain(&Says(refused())), "cannot connect: refused");
        assert_eq!(cause_chain(&Hides(refused())), "cannot load: refused");
    }

    #[test]
    fn names_are_listed_or_said_to_be_none() {
        assert_eq!(list_or_none(&[]), "nothing");
        assert_eq!(list_or_none(&["a".into(), "b".into()]), "a, b");
    }
}
