//! Text we did not write ourselves (HR data, a peer's answer), made safe to show
//! on an operator's terminal or in a log line. A username holding `ESC[2J` or
//! `\ndeletion guard: would pass` must show as those characters, not clear the
//! screen or forge a line; a right-to-left override must not turn a line around;
//! an invisible character must not make two keys look alike.
//!
//! One rule, used everywhere: [`is_control`] says which characters are shown
//! escaped (`\n`, `\r`, `\t`, otherwise `\u{1b}` as in Rust), and which a key
//! (username, email, group_no) may never hold.

use std::fmt::{self, Write};

/// Characters that move the cursor, start terminal commands, break or reorder
/// lines, or cannot be seen: the C0 and C1 controls and DEL, the Unicode line and
/// paragraph separators, the bidirectional controls, and the zero-width and other
/// invisible format characters.
pub fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'                      // soft hyphen
                | '\u{061C}'                // Arabic letter mark
                | '\u{180E}'                // Mongolian vowel separator
                | '\u{200B}'..='\u{200F}'   // zero-width space/(non-)joiner, LRM, RLM
                | '\u{2028}'..='\u{202E}'   // line/paragraph separator, bidi embeddings and overrides
                | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, bidi isolates
                | '\u{FEFF}'                // zero-width no-break space (BOM)
                | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        )
}

/// The first character of `text` that [`is_control`] refuses, if any.
pub fn first_control(text: &str) -> Option<char> {
    text.chars().find(|c| is_control(*c))
}

/// `c` as `U+001B`, for messages that name a character.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// `text` with every [`is_control`] character escaped; everything else as it is.
/// For text shown bare (a list of keys, a log field).
pub fn escape(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// `text` in double quotes, with [`is_control`] characters, `"` and `\` escaped,
/// so that the reader sees exactly where it starts and ends. For names inside a
/// sentence (`employee "alice" …`).
pub fn quote(text: &str) -> Quoted<'_> {
    Quoted(text)
}

/// See [`escape`].
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(&'a str);

/// See [`quote`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(&'a str);

fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str, quoted: bool) -> fmt::Result {
    let mut rest = text;
    while let Some(at) = rest.find(|c: char| is_control(c) || (quoted && matches!(c, '"' | '\\'))) {
        f.write_str(&rest[..at])?;
        let c = rest[at..].chars().next().unwrap_or_default();
        match c {
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '"' | '\\' => {
                f.write_char('\\')?;
                f.write_char(c)?;
            }
            _ => write!(f, "\\u{{{:x}}}", u32::from(c))?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    f.write_str(rest)
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, false)
    }
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        write_escaped(f, self.0, true)?;
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_commands_and_forged_lines_are_shown_as_text() {
        let hostile = "x\u{1b}[2J\r\ndeletion guard: would pass\t\u{9b}31m\u{7f}";
        let shown = escape(hostile).to_string();
        assert_eq!(
            shown,
            "x\\u{1b}[2J\\r\\ndeletion guard: would pass\\t\\u{9b}31m\\u{7f}"
        );
        assert!(!shown.chars().any(is_control));
    }

    #[test]
    fn reordering_and_invisible_characters_are_shown() {
        assert_eq!(
            escape("admin\u{202e}nimda\u{200b}\u{2028}").to_string(),
            "admin\\u{202e}nimda\\u{200b}\\u{2028}"
        );
    }

    #[test]
    fn ordinary_text_is_left_alone_in_every_script() {
        for text in [
            "alice",
            "Zoë Ång",
            "e\u{301}",
            "山田太郎",
            "fox🦊",
            "DOMAIN\\user",
            "a \"b\"",
        ] {
            assert_eq!(escape(text).to_string(), text);
        }
    }

    #[test]
    fn quoting_marks_both_ends_and_escapes_quotes() {
        assert_eq!(quote("a\"b\\c\n").to_string(), r#""a\"b\\c\n""#);
        assert_eq!(quote("Zoë").to_string(), "\"Zoë\"");
    }

    #[test]
    fn the_first_control_is_named() {
        assert_eq!(first_control("ab\u{1b}c\n"), Some('\u{1b}'));
        assert_eq!(first_control("abc"), None);
        assert_eq!(code_point('\u{1b}'), "U+001B");
    }

    /// Reads back what [`quote`] wrote.
    fn unquote(text: &str) -> Option<String> {
        let inner = text.strip_prefix('"')?.strip_suffix('"')?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '"' {
                return None; // an unescaped quote inside
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                c @ ('"' | '\\') => out.push(c),
                'u' => {
                    let rest: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    let hex = rest.strip_prefix('{')?;
                    out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                }
                _ => return None,
            }
        }
        Some(out)
    }

    proptest::proptest! {
        #[test]
        fn escaped_text_holds_no_control_character(text in proptest::prelude::any::<String>()) {
            let shown = escape(&text).to_string();
            proptest::prop_assert_eq!(first_control(&shown), None);
            let quoted = quote(&text).to_string();
            proptest::prop_assert_eq!(first_control(&quoted), None);
        }

        #[test]
        fn quoting_is_reversible(text in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(unquote(&quote(&text).to_string()), Some(text));
        }

        #[test]
        fn text_without_controls_is_shown_as_it_is(text in "[^\\p{C}\u{2028}-\u{202e}\u{2060}-\u{206f}\u{ad}\u{61c}\u{180e}\u{200b}-\u{200f}\u{feff}\u{fff9}-\u{fffb}]*") {
            proptest::prop_assert_eq!(escape(&text).to_string(), text);
        }
    }
}
