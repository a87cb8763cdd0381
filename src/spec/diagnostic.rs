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
