//! Progress on stderr for commands a person waits on: one status line, rewritten in place on
//! a terminal, and notes (events) that scroll above it.

use std::io::{IsTerminal, Write};

/// On a terminal the status line is redrawn at every poll; otherwise a line is printed only
/// when it changes (ignoring a trailing ` (<elapsed>)`), so logs of scripted runs stay short.
pub struct Progress {
    tty: bool,
    last: String,
    /// A status line is on screen and not yet ended with a newline.
    drawn: bool,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            last: String::new(),
            drawn: false,
        }
    }

    pub fn show(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
            self.drawn = true;
        } else {
            let key = status_key(line);
            if key != self.last {
                let _ = writeln!(err, "{line}");
                key.clone_into(&mut self.last);
            }
        }
    }

    /// A line that stays: on a terminal it replaces the status line, which the next
    /// [`Progress::show`] draws again below it.
    pub fn note(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty && self.drawn {
            let _ = write!(err, "\r\x1b[K");
            self.drawn = false;
        }
        let _ = writeln!(err, "{line}");
    }

    pub fn finish(&mut self) {
        if self.tty && self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}

/// The status without its elapsed time: `... (12s)` -> `...`.
fn status_key(line: &str) -> &str {
    match line.rsplit_once(" (") {
        Some((key, tail))
            if tail.ends_with("s)") && tail[..tail.len() - 2].parse::<u64>().is_ok() =>
        {
            key
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trailing_elapsed_time_is_ignored() {
        assert_eq!(status_key("task abc: PENDING (12s)"), "task abc: PENDING");
        assert_eq!(
            status_key("started 1 tasks: (task abc) (3s)"),
            "started 1 tasks: (task abc)"
        );
        assert_eq!(status_key("started (task abc)"), "started (task abc)");
    }
}
