//! Problems found in a spec, rendered by miette with the file, line and column of each bad value.

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};

/// One problem in a spec, with the spans it concerns labelled.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct Problem {
    pub message: String,
    #[label(collection)]
    pub labels: Vec<LabeledSpan>,
    #[help]
    pub help: Option<String>,
}

impl Problem {
    pub fn at(span: SourceSpan, message: impl Into<String>, label: impl Into<String>) -> Self {
        let label = label.into();
        let label = (!label.is_empty()).then_some(label);
        Self { message: message.into(), labels: vec![LabeledSpan::new_with_span(label, span)], help: None }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_label(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        self.labels.push(LabeledSpan::new_with_span(Some(label.into()), span));
        self
    }
}

/// Every problem found in one spec file, reported together.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{path}: {count} problem{s} in the spec", count = problems.len(), s = if problems.len() == 1 { "" } else { "s" })]
pub struct SpecErrors {
    pub path: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[related]
    pub problems: Vec<Problem>,
}

/// Collects problems while a spec is checked, so one run reports all of them.
#[derive(Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, p: Problem) {
        self.0.push(p);
    }

    pub fn at(&mut self, span: SourceSpan, message: impl Into<String>, label: impl Into<String>) {
        self.push(Problem::at(span, message, label));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The widest column a label is drawn at: past it (a line of 100 KB) the renderer cannot draw
/// the underline, so the position goes into the message instead.
const WIDEST_LABEL_COLUMN: usize = 1000;

impl SpecErrors {
    pub fn new(path: String, src: NamedSource<String>, mut problems: Vec<Problem>) -> Self {
        for p in &mut problems {
            let text = src.inner();
            let (drawn, far): (Vec<_>, Vec<_>) = std::mem::take(&mut p.labels)
                .into_iter()
                .partition(|l| column(text, l.offset()) <= WIDEST_LABEL_COLUMN);
            for l in far {
                let (line, col) = (line_of(text, l.offset()), column(text, l.offset()));
                p.message = format!("{} (line {line}, column {col}, too far right to show)", p.message);
            }
            p.labels = drawn;
        }
        Self { path, src, problems }
    }

    /// Each problem as data (`validate --json`): severity, code, message, help, and the file,
    /// line and column (1-based, in characters) of its first label, with the label's text.
    pub fn diagnostics(&self) -> Vec<serde_json::Value> {
        let text = self.src.inner();
        self.problems
            .iter()
            .map(|p| {
                let first = p.labels.first();
                serde_json::json!({
                    "severity": "error",
                    "code": "cruddur::spec::invalid",
                    "message": p.message,
                    "help": p.help,
                    "file": self.path,
                    "line": first.map(|l| line_of(text, l.offset())),
                    "column": first.map(|l| column(text, l.offset())),
                    "label": first.and_then(|l| l.label()),
                })
            })
            .collect()
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// The 1-based column (in characters) of byte `offset` on its line.
fn column(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let start = text.as_bytes()[..offset].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    text.get(start..offset).map_or(offset - start, |s| s.chars().count()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_too_far_right_to_draw_moves_into_the_message() {
        let text = format!("a: 1\n{}: 2\n", "k".repeat(100_000));
        let far = Problem::at(SourceSpan::from((100_005, 1)), "bad", "here");
        let near = Problem::at(SourceSpan::from((0, 1)), "fine", "here");
        let errors = SpecErrors::new("s.yaml".into(), NamedSource::new("s.yaml", text), vec![far, near]);
        assert!(errors.problems[0].labels.is_empty());
        assert_eq!(errors.problems[0].message, "bad (line 2, column 100001, too far right to show)");
        assert_eq!(errors.problems[1].labels.len(), 1);
        let mut out = String::new();
        miette::GraphicalReportHandler::new().render_report(&mut out, &errors).expect("renders");
        assert!(out.contains("too far right"), "{out}");
    }
}
