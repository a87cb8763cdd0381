//! Colour in text output: adds green, changes yellow, destroys and errors red, as Terraform
//! users expect. Whether a stream gets colour is `anstream`'s decision, the one clap and cargo
//! make: never with `NO_COLOR` (no-color.org) or `--no-color`; always with `CLICOLOR_FORCE`
//! (a CI log that renders ANSI); never with `CLICOLOR=0` or `TERM=dumb`; else on a terminal.
//! Decided once per process, before any output.

use std::sync::OnceLock;

use anstyle::{AnsiColor, Style};

static ENABLED: OnceLock<bool> = OnceLock::new();

/// Decides whether stdout gets colour (see the module's text).
pub fn init(no_color_flag: bool) {
    let choice = anstream::AutoStream::choice(&std::io::stdout());
    let _ = ENABLED.set(!no_color_flag && choice != anstream::ColorChoice::Never);
}

/// Whether stderr may get colour (the diagnostics renderer asks), decided the same way.
pub fn stderr_enabled(no_color_flag: bool) -> bool {
    !no_color_flag && anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
}

fn enabled() -> bool {
    *ENABLED.get().unwrap_or(&false)
}

/// What a piece of text says.
#[derive(Clone, Copy, Debug)]
pub enum Tone {
    Add,
    Change,
    Destroy,
    Error,
    Bold,
}

impl Tone {
    fn style(self) -> Style {
        match self {
            Tone::Add => AnsiColor::Green.on_default(),
            Tone::Change => AnsiColor::Yellow.on_default(),
            Tone::Destroy | Tone::Error => AnsiColor::Red.on_default(),
            Tone::Bold => Style::new().bold(),
        }
    }
}

/// `text` in the tone's colour, when colour is on.
pub fn paint(tone: Tone, text: &str) -> String {
    if enabled() { paint_always(tone, text) } else { text.to_string() }
}

fn paint_always(tone: Tone, text: &str) -> String {
    let style = tone.style();
    format!("{style}{text}{style:#}")
}

/// A rendered plan with its action markers coloured: each line's leading `+`, `~`, `-/+`, `+/-`,
/// `-` or `<=`, and the summary line's counts.
pub fn plan(text: &str) -> String {
    if !enabled() {
        return text.to_string();
    }
    color_plan(text)
}

fn color_plan(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let marker = [
            ("-/+ ", Tone::Destroy),
            ("+/- ", Tone::Change),
            ("+ ", Tone::Add),
            ("~ ", Tone::Change),
            ("- ", Tone::Destroy),
        ]
        .into_iter()
        .find(|(m, _)| body.starts_with(m));
        match marker {
            Some((m, tone)) => {
                out.push_str(indent);
                out.push_str(&paint_always(tone, m.trim_end()));
                out.push(' ');
                out.push_str(&body[m.len()..]);
            }
            None if body.starts_with("Plan:") || body.starts_with("No changes.") => {
                out.push_str(indent);
                out.push_str(&paint_always(Tone::Bold, body.trim_end_matches('\n')));
                if body.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_markers_get_their_colours_and_the_rest_is_untouched() {
        let text = "  # s3_bucket.a will be created\n  + resource \"s3_bucket\" \"a\" {\n      ~ tags = {}\n  - x\n-/+ y\nPlan: 1 to add.\n";
        let colored = color_plan(text);
        assert!(colored.contains("  \u{1b}[32m+\u{1b}[0m resource"), "{colored:?}");
        assert!(colored.contains("      \u{1b}[33m~\u{1b}[0m tags"), "{colored:?}");
        assert!(colored.contains("  \u{1b}[31m-\u{1b}[0m x"), "{colored:?}");
        assert!(colored.contains("\u{1b}[31m-/+\u{1b}[0m y"), "{colored:?}");
        assert!(colored.starts_with("  # s3_bucket.a will be created\n"));
        // Stripping the colour gives back the text exactly.
        let stripped: String = {
            let mut s = String::new();
            let mut chars = colored.chars();
            while let Some(c) = chars.next() {
                if c == '\u{1b}' {
                    for c in chars.by_ref() {
                        if c == 'm' {
                            break;
                        }
                    }
                } else {
                    s.push(c);
                }
            }
            s
        };
        assert_eq!(stripped, text);
    }
}
