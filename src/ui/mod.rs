//! All output goes through here: the `Printer` (messages, results, prompts) and `Progress`
//! (live stack progress, or plain timestamped lines when stdout is not a terminal).

mod printer;
mod progress;

pub use printer::Printer;
pub use progress::{Progress, format_duration, stack_line};
