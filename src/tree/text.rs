//! Words and colours of the tree: ANSI colour codes (only when the style asks for them) and
//! ages in the manner of kubectl. Pure.

use k8s_openapi::jiff::Timestamp;

/// Whether the lines carry ANSI colour codes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub const PLAIN: Style = Style { color: false };
    pub const COLOR: Style = Style { color: true };

    /// `text` in `color`, or as is for a plain style.
    pub(crate) fn paint(self, color: Color, text: &str) -> String {
        match (self.color, color.code()) {
            (true, Some(code)) if !text.is_empty() => format!("\x1b[{code}m{text}\x1b[0m"),
            _ => text.to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Color {
    None,
    Bold,
    Dim,
    Red,
    Green,
    Yellow,
    Cyan,
}

impl Color {
    fn code(self) -> Option<&'static str> {
        match self {
            Color::None => None,
            Color::Bold => Some("1"),
            Color::Dim => Some("2"),
            Color::Red => Some("31"),
            Color::Green => Some("32"),
            Color::Yellow => Some("33"),
            Color::Cyan => Some("36"),
        }
    }
}

/// How long ago `then` was, as kubectl shows ages: `45s`, `7m`, `3h`, `12d`.
pub fn age(now: Timestamp, then: Timestamp) -> String {
    let seconds = (now.as_second() - then.as_second()).max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 120 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let ago = |s: i64| age(now, Timestamp::from_second(now.as_second() - s).unwrap());
        assert_eq!(ago(0), "0s");
        assert_eq!(ago(119), "119s");
        assert_eq!(ago(120), "2m");
        assert_eq!(ago(3 * 3600), "3h");
        assert_eq!(ago(3 * 86400), "3d");
        assert_eq!(ago(-5), "0s");
    }

    #[test]
    fn plain_style_has_no_codes() {
        assert_eq!(Style::PLAIN.paint(Color::Red, "x"), "x");
        assert_eq!(Style::COLOR.paint(Color::Red, "x"), "\x1b[31mx\x1b[0m");
    }
}
