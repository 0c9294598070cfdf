//! Showing a rendering again and again: on a terminal it is redrawn in place; elsewhere (a
//! pipe, a log) each new rendering is printed after the last one, unchanged ones not at all.

use std::io::{IsTerminal as _, Write as _};

pub struct Screen {
    tty: bool,
    /// Clear the whole screen (a full-screen watch) rather than the lines drawn last.
    full: bool,
    drawn: usize,
    last: Vec<String>,
}

impl Screen {
    /// A full-screen display (`cutover get --watch`).
    pub fn full() -> Screen {
        Screen {
            tty: std::io::stdout().is_terminal(),
            full: true,
            drawn: 0,
            last: Vec::new(),
        }
    }

    /// A block redrawn below what was printed before it (`cutover demo`).
    pub fn inline() -> Screen {
        Screen {
            full: false,
            ..Screen::full()
        }
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// Shows `lines`, unless they are what is shown already.
    pub fn show(&mut self, lines: &[String]) {
        if lines == self.last.as_slice() {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.tty {
            if self.full {
                let _ = write!(out, "\x1b[H\x1b[2J");
            } else if self.drawn > 0 {
                let _ = write!(out, "\r\x1b[{}A\x1b[J", self.drawn);
            }
            // No wrapping while drawing, so that the count of lines to redraw stays right.
            let _ = write!(out, "\x1b[?7l");
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
            let _ = write!(out, "\x1b[?7h");
        } else {
            if !self.last.is_empty() && self.full {
                let _ = writeln!(out);
            }
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = out.flush();
        self.drawn = lines.len();
        self.last = lines.to_vec();
    }
}
