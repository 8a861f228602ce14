//! All output goes through here: the `Printer` (messages, results, prompts) and `Progress`
//! (live stack progress, or plain timestamped lines when stdout is not a terminal).

mod printer;
mod progress;

pub use printer::{Printer, inert};
pub use progress::{Progress, format_duration, stack_line};

/// Widest line of a human report (tables, hints, notes).
pub const WIDTH: usize = 100;

/// `text` wrapped at word boundaries to `width` columns: the first line starts with `first`,
/// the others with `rest`. A word longer than a line (a URL) stands alone on its line.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::from(first);
    let mut col = first.chars().count();
    let mut at_start = true;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if !at_start && col + 1 + len > width {
            out.push('\n');
            out.push_str(rest);
            col = rest.chars().count();
            at_start = true;
        }
        if !at_start {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += len;
        at_start = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_words_with_a_hanging_indent() {
        assert_eq!(
            wrap("one two three four", 12, "- ", "  "),
            "- one two\n  three four"
        );
        assert_eq!(wrap("", 10, "> ", "  "), "> ");
        // A word wider than the line is not cut.
        assert_eq!(
            wrap("a https://example.org/long b", 10, "", ""),
            "a\nhttps://example.org/long\nb"
        );
    }
}
