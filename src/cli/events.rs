//! How apply and destroy show their events: as the text Terraform users know, or as one JSON
//! object per line (`--json`, format in docs/plan-json.md). The engine only reports events
//! ([`ApplyEvents`]); all printing is here.

use super::stdout::outln;
use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use super::style::{Tone, paint};
use crate::addr::ResourceAddr;
use crate::apply::{ApplyError, ApplyEvents};
use crate::build::{Architecture, Artifact, BuildEvents};
use crate::plan::Action;
use crate::retry::RetryNotice;

/// The version of the `apply --json` / `destroy --json` stream.
pub const STREAM_FORMAT_VERSION: &str = "1.0";

/// `1m20s`, `12s`, `340ms`: Terraform's way of saying how long.
pub fn elapsed(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{}ms", d.as_millis()),
        1..=59 => format!("{secs}s"),
        _ => format!("{}m{}s", secs / 60, secs % 60),
    }
}

/// The `-ing` word Terraform uses for an action in progress.
fn progressive(action: Action) -> &'static str {
    match action {
        Action::Create => "creating",
        Action::Update => "modifying",
        Action::Replace => "replacing",
        Action::Delete => "destroying",
        Action::Forget => "forgetting",
        Action::NoOp => "importing",
    }
}

/// Text, as Terraform prints it.
pub struct TextEvents;

impl ApplyEvents for TextEvents {
    fn started(&self, addr: &ResourceAddr, action: Action, id: Option<&str>) {
        let id = id.unwrap_or_default();
        match action {
            Action::Create => outln!("{addr}: {}", paint(Tone::Add, "Creating...")),
            Action::Update => outln!("{addr}: {} [id={id}]", paint(Tone::Change, "Modifying...")),
            Action::Replace => outln!("{addr}: {} [id={id}]", paint(Tone::Change, "Replacing...")),
            Action::Delete => outln!("{addr}: {} [id={id}]", paint(Tone::Destroy, "Destroying...")),
            Action::Forget | Action::NoOp => {}
        }
    }

    fn retrying(&self, addr: &ResourceAddr, notice: &RetryNotice) {
        outln!("{addr}: {}", retry_line(notice));
    }

    fn adopted(&self, addr: &ResourceAddr, id: &str) {
        outln!("{addr}: Found [id={id}], made by an earlier attempt that did not hear back: adopting it");
    }

    fn left_to_aws(&self, addr: &ResourceAddr, why: &str) {
        outln!("{addr}: not deleted: {why}; it is no longer managed");
    }

    fn intent_dropped(&self, addr: &ResourceAddr) {
        outln!("{addr}: an interrupted create made nothing");
    }

    fn awaiting_in_flight(&self, addr: &ResourceAddr, wait: Duration) {
        outln!(
            "{addr}: waiting {}s for a create the interrupted command may still have in flight, then looking again",
            wait.as_secs()
        );
    }

    fn still_working(&self, addr: &ResourceAddr, action: Action, took: Duration) {
        outln!("{addr}: Still {}... [{} elapsed]", progressive(action), elapsed(took));
    }

    fn finished(&self, addr: &ResourceAddr, action: Action, id: Option<&str>, took: Duration) {
        let verb = match action {
            Action::NoOp => "Import",
            Action::Create => "Creation",
            Action::Update => "Modifications",
            Action::Replace => "Replacement",
            Action::Delete => "Destruction",
            Action::Forget => "Forgetting (kept in AWS)",
        };
        match id {
            Some(id) => outln!("{addr}: {verb} complete after {} [id={id}]", elapsed(took)),
            None => outln!("{addr}: {verb} complete after {}", elapsed(took)),
        }
    }

    fn ready(&self, addr: &ResourceAddr, took: Duration) {
        outln!("{addr}: Ready after {}", elapsed(took));
    }

    fn failed(&self, addr: &ResourceAddr, action: Action, _error: &ApplyError, took: Duration) {
        // The error itself is printed once, with its hint, in the summary at the end.
        outln!("{addr}: {} after {}", paint(Tone::Error, &format!("{} failed", progressive(action))), elapsed(took));
    }
}

/// One JSON object per line on stdout.
pub struct JsonEvents;

impl JsonEvents {
    /// Writes one line of the stream: `{"format_version", "type", ...fields}`.
    pub fn line(kind: &str, fields: Value) {
        let mut object = serde_json::Map::new();
        object.insert("format_version".into(), json!(STREAM_FORMAT_VERSION));
        object.insert("type".into(), json!(kind));
        if let Value::Object(fields) = fields {
            object.extend(fields);
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", Value::Object(object));
        let _ = out.flush();
    }

    /// A line about one resource: its address and action first, then the event's fields.
    fn resource(kind: &str, addr: &ResourceAddr, action: Option<Action>, fields: Value) {
        let mut object = serde_json::Map::new();
        object.insert("address".into(), json!(addr.to_string()));
        if let Some(action) = action {
            object.insert("action".into(), json!(action)); // the plan format's names
        }
        if let Value::Object(fields) = fields {
            object.extend(fields);
        }
        Self::line(kind, Value::Object(object));
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ApplyEvents for JsonEvents {
    fn started(&self, addr: &ResourceAddr, action: Action, id: Option<&str>) {
        Self::resource("started", addr, Some(action), json!({"id": id}));
    }

    fn retrying(&self, addr: &ResourceAddr, notice: &RetryNotice) {
        let e = notice.error;
        let fields = json!({
            "operation": e.operation, "code": e.code, "attempt": notice.attempt, "delay_ms": ms(notice.delay),
        });
        Self::resource("retrying", addr, None, fields);
    }

    fn created(&self, addr: &ResourceAddr, id: &str) {
        Self::resource("created", addr, Some(Action::Create), json!({"id": id}));
    }

    fn adopted(&self, addr: &ResourceAddr, id: &str) {
        Self::resource("adopted", addr, None, json!({"id": id}));
    }

    fn intent_dropped(&self, addr: &ResourceAddr) {
        Self::resource("intent_dropped", addr, None, json!({}));
    }

    fn awaiting_in_flight(&self, addr: &ResourceAddr, wait: Duration) {
        Self::resource("awaiting_in_flight", addr, Some(Action::Create), json!({"wait_ms": ms(wait)}));
    }

    fn left_to_aws(&self, addr: &ResourceAddr, why: &str) {
        Self::resource("left_to_aws", addr, Some(Action::Delete), json!({"reason": why}));
    }

    fn still_working(&self, addr: &ResourceAddr, action: Action, took: Duration) {
        Self::resource("progress", addr, Some(action), json!({"elapsed_ms": ms(took)}));
    }

    fn finished(&self, addr: &ResourceAddr, action: Action, id: Option<&str>, took: Duration) {
        Self::resource("finished", addr, Some(action), json!({"id": id, "elapsed_ms": ms(took)}));
    }

    fn ready(&self, addr: &ResourceAddr, took: Duration) {
        Self::resource("ready", addr, None, json!({"elapsed_ms": ms(took)}));
    }

    fn failed(&self, addr: &ResourceAddr, action: Action, error: &ApplyError, took: Duration) {
        let (operation, code) = match error {
            ApplyError::Aws { error, .. } => (Some(error.operation.to_string()), Some(error.code.to_string())),
            _ => (None, None),
        };
        let fields = json!({
            "error": error.to_string(), "operation": operation, "code": code, "hint": error.hint(),
            "elapsed_ms": ms(took),
        });
        Self::resource("failed", addr, Some(action), fields);
    }
}

/// Build progress as text on stderr (stdout stays the plan's), beside cargo's own.
pub struct TextBuildEvents;

impl BuildEvents for TextBuildEvents {
    fn started(&self, dir: &str, arch: Architecture, profile: &str) {
        eprintln!("Building {dir} ({}, profile {profile})...", arch.triple());
    }

    fn packaged(&self, dir: &str, arch: Architecture, artifact: &Artifact, took: Duration) {
        eprintln!(
            "Packaged {dir} for {} in {} -> {} ({} KiB, code_sha256 {})",
            arch.name(),
            elapsed(took),
            artifact.zip_path.display(),
            artifact.size / 1024,
            artifact.code_sha256
        );
    }

    fn warning(&self, message: &str) {
        eprintln!("{} {message}", paint(Tone::Change, "warning:"));
    }
}

/// Build progress as lines of the `apply --json` stream.
pub struct JsonBuildEvents;

impl BuildEvents for JsonBuildEvents {
    fn started(&self, dir: &str, arch: Architecture, profile: &str) {
        JsonEvents::line("build_started", json!({"source": dir, "architecture": arch.name(), "profile": profile}));
    }

    fn packaged(&self, dir: &str, arch: Architecture, artifact: &Artifact, took: Duration) {
        let fields = json!({
            "source": dir, "architecture": arch.name(), "zip": artifact.zip_path.display().to_string(),
            "size": artifact.size, "code_sha256": artifact.code_sha256, "elapsed_ms": ms(took),
        });
        JsonEvents::line("build_finished", fields);
    }

    fn warning(&self, message: &str) {
        JsonEvents::line("warning", json!({"message": message}));
    }
}

/// A retry of a call that belongs to no resource being applied (a refresh, a listing, the
/// state backend): one line on stderr, which JSON output on stdout leaves alone.
pub fn retrying(notice: &RetryNotice) {
    eprintln!("{}", retry_line(notice));
}

/// What a retry says: the call, AWS's answer, the wait, the attempt.
fn retry_line(notice: &RetryNotice) -> String {
    let e = notice.error;
    let delay = notice.delay.as_secs_f64();
    format!("{} answered {}: trying again in {delay:.1}s (attempt {} failed)", e.operation, e.code, notice.attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_as_terraform_prints_it() {
        assert_eq!(elapsed(Duration::from_millis(340)), "340ms");
        assert_eq!(elapsed(Duration::from_secs(12)), "12s");
        assert_eq!(elapsed(Duration::from_secs(80)), "1m20s");
    }
}
