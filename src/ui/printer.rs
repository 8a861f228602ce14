#![allow(clippy::print_stdout, clippy::print_stderr)]
//! The one owner of stdout and stderr.
//!
//! - Results (what a script may parse) go to stdout: text, or JSON with `--output json`.
//! - Messages and progress go to stdout in text mode and to stderr in JSON mode, so that JSON
//!   output stays parseable.
//! - Warnings and errors go to stderr.
//! - A control character in what is printed (text from a server's log, an API) is shown, not
//!   obeyed ([`inert`]).

use std::fmt::Display;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;

use super::progress::Progress;
use crate::cli::OutputFormat;
use crate::error::usage;
use crate::settings::Global;

#[derive(Debug, Clone)]
pub struct Printer {
    pub format: OutputFormat,
    live: bool,
    stdin_tty: bool,
    /// Fields every JSON result carries (account, region, profile), once known.
    context: std::sync::Arc<std::sync::OnceLock<serde_json::Map<String, serde_json::Value>>>,
}

impl Printer {
    pub fn new(g: &Global) -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        Printer {
            format: g.output,
            live: stdout_tty && !g.no_progress && g.output == OutputFormat::Text,
            stdin_tty: std::io::stdin().is_terminal(),
            context: Default::default(),
        }
    }

    /// Fields added to every JSON result object from now on (the first call wins).
    pub fn set_context(&self, fields: serde_json::Value) {
        if let serde_json::Value::Object(map) = fields {
            let _ = self.context.set(map);
        }
    }

    fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// A message for the person at the terminal.
    pub fn info(&self, msg: impl Display) {
        let msg = msg.to_string();
        let msg = inert(&msg);
        if self.json() {
            eprintln!("{msg}");
        } else {
            println!("{msg}");
        }
    }

    pub fn warn(&self, msg: impl Display) {
        eprintln!("warning: {}", inert(&msg.to_string()));
    }

    pub fn error(&self, err: &anyhow::Error) {
        eprintln!("error: {}", inert(&err.to_string()));
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {}", inert(&cause.to_string()));
        }
    }

    /// The command's result: `text` in text mode, `json` (pretty) in JSON mode.
    pub fn result(&self, text: impl Display, json: &serde_json::Value) {
        if self.json() {
            let mut json = json.clone();
            if let (Some(ctx), serde_json::Value::Object(obj)) = (self.context.get(), &mut json) {
                for (k, v) in ctx {
                    obj.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&json).expect("JSON values serialize")
            );
        } else {
            let text = text.to_string();
            let text = inert(&text);
            if !text.is_empty() {
                println!("{text}");
            }
        }
        let _ = std::io::stdout().flush();
    }

    /// Progress of a stack operation, in the style this terminal supports.
    pub fn progress(&self) -> Progress {
        if self.live {
            Progress::live()
        } else {
            Progress::plain(self.json())
        }
    }

    /// Asks a yes/no question (default no).
    pub fn confirm(&self, question: &str) -> Result<bool> {
        let answer = self.ask(question, &format!("{question} [y/N] "))?;
        Ok(matches!(answer.as_str(), "y" | "Y" | "yes" | "YES" | "Yes"))
    }

    /// Asks the user to type `expected` to go on.
    pub fn confirm_by_typing(&self, question: &str, expected: &str) -> Result<bool> {
        let prompt = format!("{question}\nType the stack name ({expected}) to confirm: ");
        Ok(self.ask(question, &prompt)? == expected)
    }

    /// One line from the terminal. Without a terminal there is nobody to ask: that is a usage
    /// error that names `--yes`.
    fn ask(&self, question: &str, prompt: &str) -> Result<String> {
        if !self.stdin_tty {
            return Err(usage(format!(
                "{question} — confirmation needs a terminal; pass --yes to confirm non-interactively"
            )));
        }
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim().to_string())
    }
}

/// Text as the terminal may show it: what bbbctl prints often comes from places others write
/// (a BBB server's bootstrap log, the version its API reports, an AWS error message), and a
/// control character there (an escape sequence) could rewrite the screen or the terminal's
/// title. Every control character but newline and tab is shown as `\u{..}` instead.
pub fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() && c != '\n' && c != '\t' {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            inert("READY https://bbb-1.example.org"),
            "READY https://bbb-1.example.org"
        );
        assert_eq!(inert("a\nb\tc"), "a\nb\tc");
        assert_eq!(
            inert("\u{1b}]0;pwned\u{7}FAILED\r"),
            "\\u{1b}]0;pwned\\u{7}FAILED\\u{d}"
        );
    }
}
