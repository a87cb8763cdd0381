//! `lambda-runtime`: runs a deployed function's `bootstrap` as Lambda's `provided.al2023`
//! runtime would, through the Runtime API emulator ([`aws_emulator::runtime_api`]), for
//! programs that are not Rust (the demo).
//!
//! ```text
//! lambda-runtime --bootstrap DIR/bootstrap --function-name NAME --log FILE [--env K=V]... [--timings] [-- ARG...]
//! ```
//!
//! Each line on stdin is one event (JSON); for each, one line on stdout says how it ended:
//! `{"response": ...}`, `{"error": ...}` (the handler's error document), or `{"failed": "..."}`
//! (the bootstrap could not initialise, or did not answer within 60 s; the message holds its
//! log). The function is stopped when stdin ends.
//!
//! With `--timings` (the Lambda benchmark) the first line is `{"pid": N}` (the bootstrap's, for
//! its memory in /proc), and each outcome also carries `"ms"`: the event handed out to the
//! answer read; the first also `"init_ms"`: the process started to its first `next` request.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use aws_emulator::runtime_api::{Outcome, Runtime};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(version, about = "Run a Lambda bootstrap through the Runtime API: events in on stdin, outcomes out")]
struct Args {
    /// The function's `bootstrap`, unpacked from its zip.
    #[arg(long)]
    bootstrap: PathBuf,
    /// The function's name (AWS_LAMBDA_FUNCTION_NAME and the ARN it is invoked as).
    #[arg(long)]
    function_name: String,
    /// Where the function's stderr goes.
    #[arg(long)]
    log: PathBuf,
    /// An environment variable of the function (repeatable); nothing else of this process's
    /// environment reaches it.
    #[arg(long = "env", value_name = "K=V", value_parser = key_value)]
    env: Vec<(String, String)>,
    /// Print the bootstrap's pid first, and each invocation's time (and the first one's
    /// initialisation) with its outcome.
    #[arg(long)]
    timings: bool,
    /// Arguments for the bootstrap (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not K=V"))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut runtime = Runtime::start_with_args(&args.bootstrap, &args.args, &args.function_name, &args.env, args.log);
    let stdout = std::io::stdout();
    if args.timings && writeln!(stdout.lock(), "{}", json!({ "pid": runtime.pid() })).is_err() {
        return std::process::ExitCode::SUCCESS;
    }
    let mut first = true;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Err(e) => json!({ "failed": format!("the event is not JSON: {e}") }),
            Ok(event) => match runtime.try_invoke_timed(&event) {
                Ok((outcome, took)) => {
                    let mut answer = match outcome {
                        Outcome::Response(v) => json!({ "response": v }),
                        Outcome::Error(v) => json!({ "error": v }),
                    };
                    if args.timings {
                        answer["ms"] = json!(took.as_secs_f64() * 1000.0);
                        if std::mem::take(&mut first) {
                            answer["init_ms"] = json!(runtime.init_time().map(|t| t.as_secs_f64() * 1000.0));
                        }
                    }
                    answer
                }
                Err(why) => json!({ "failed": why }),
            },
        };
        let mut out = stdout.lock();
        if writeln!(out, "{answer}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}
