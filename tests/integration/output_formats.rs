//! What the CLI prints for machines and for the frontend: `apply --json` and `destroy --json`
//! streams, `output --format dotenv`, and `build` with only the variables it needs.

use serde_json::Value;

use crate::harness::{Env, Workdir};

const SPEC: &str = r#"
variables:
  FRONTEND_ORIGIN: { default: "https://app.example" }
resources:
  s3_bucket:
    uploads:
      name: stream-uploads
      cors_rules: [{ allowed_methods: [PUT], allowed_origins: ["${var.FRONTEND_ORIGIN}"] }]
  sns_topic:
    assets:
      name: stream-topic
outputs:
  uploads: { value: "${s3_bucket.uploads.name}", env: REACT_APP_UPLOADS_BUCKET }
  topic: { value: "${sns_topic.assets.arn}", env: REACT_APP_TOPIC, sensitive: true }
  unmapped: ${sns_topic.assets.name}
"#;

/// Each stdout line as JSON; every line must parse and carry the stream's version.
fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .inspect(|v| assert_eq!(v["format_version"], "1.0", "{v}"))
        .collect()
}

fn types(lines: &[Value]) -> Vec<String> {
    lines.iter().map(|l| l["type"].as_str().unwrap_or_default().to_string()).collect()
}

#[test]
fn apply_and_destroy_json_stream_the_plan_each_event_the_outcome_and_the_outputs() {
    let env = Env::new();
    env.write_spec(SPEC);
    // --json never asks: without --auto-approve a fresh plan is refused, nothing is created.
    let refused = env.run(&["apply", "--json"]).expect_code(1);
    assert!(refused.stderr_flat().contains("--auto-approve"), "{}", refused.stderr);
    assert!(env.block_on(env.s3().list_buckets().send()).expect("list").buckets().is_empty());

    let run = env.run(&["apply", "--json", "--auto-approve"]).expect_code(0);
    let stream = lines(&run.stdout);
    let kinds = types(&stream);
    assert_eq!(kinds.first().map(String::as_str), Some("plan"), "{kinds:?}");
    assert_eq!(&kinds[kinds.len() - 2..], ["outcome", "outputs"], "{kinds:?}");
    assert_eq!(stream[0]["plan"]["summary"]["add"], 2, "the plan line is the plan --json document");
    for addr in ["s3_bucket.uploads", "sns_topic.assets"] {
        let of = |t: &str| {
            stream
                .iter()
                .position(|l| l["type"] == t && l["address"] == addr)
                .unwrap_or_else(|| panic!("no {t} for {addr}"))
        };
        assert!(of("started") < of("created") && of("created") < of("finished"), "{kinds:?}");
        assert_eq!(stream[of("finished")]["action"], "create");
        assert!(stream[of("finished")]["elapsed_ms"].is_u64());
    }
    let outcome = &stream[stream.len() - 2];
    assert_eq!(outcome["complete"], true);
    assert_eq!(outcome["summary"]["add"], 2);
    let outputs = &stream[stream.len() - 1]["outputs"];
    assert_eq!(outputs["uploads"]["value"], "stream-uploads");
    assert_eq!(outputs["topic"]["value"], "(sensitive value)", "sensitive outputs are masked");
    // The stream says what AWS now has.
    let bucket = env.block_on(env.s3().head_bucket().bucket("stream-uploads").send());
    assert!(bucket.is_ok(), "the bucket the stream reported exists");

    // A failure is one `failed` line with the AWS operation and code, and the outcome lists it.
    // A name AWS refuses (`:`), known only from the state, which the spec's checks leave to AWS.
    env.write_spec(&SPEC.replace("name: stream-topic", "name: \"${s3_bucket.uploads.arn}\""));
    let failed = env.run(&["apply", "--json", "--auto-approve"]).expect_code(1);
    let stream = lines(&failed.stdout);
    let failures: Vec<&Value> = stream.iter().filter(|l| l["type"] == "failed").collect();
    assert_eq!(failures.len(), 1, "{}", failed.stdout);
    assert_eq!(failures[0]["address"], "sns_topic.assets");
    assert!(failures[0]["code"].is_string() && failures[0]["operation"].is_string(), "{}", failures[0]);
    let outcome = stream.iter().find(|l| l["type"] == "outcome").expect("an outcome line");
    assert_eq!(outcome["complete"], false);
    assert_eq!(outcome["failures"][0]["address"], "sns_topic.assets");

    env.write_spec(SPEC);
    let destroy = env.run(&["destroy", "--json", "--auto-approve"]).expect_code(0);
    let stream = lines(&destroy.stdout);
    let outcome = stream.iter().find(|l| l["type"] == "outcome").expect("an outcome line");
    assert_eq!(outcome["operation"], "destroy");
    assert!(outcome["summary"]["destroy"].as_u64() >= Some(1), "{outcome}");
    assert!(stream.iter().any(|l| l["type"] == "finished" && l["action"] == "delete"));
    assert!(env.block_on(env.s3().list_buckets().send()).expect("list").buckets().is_empty());
}

#[test]
fn output_dotenv_prints_the_mapped_outputs_and_keeps_sensitive_ones_back_unless_asked() {
    let env = Env::new();
    env.write_spec(SPEC);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let out = env.run(&["output", "--format", "dotenv"]).expect_code(0);
    assert_eq!(out.stdout, "REACT_APP_UPLOADS_BUCKET=stream-uploads\n", "unmapped and sensitive outputs left out");
    assert!(out.stderr.contains("REACT_APP_TOPIC") && out.stderr.contains("--show-sensitive"), "{}", out.stderr);
    let shown = env.run(&["output", "--format", "dotenv", "--show-sensitive"]).expect_code(0);
    assert!(
        shown.stdout.contains("REACT_APP_TOPIC=arn:aws:sns:us-east-1:123456789012:stream-topic\n"),
        "{}",
        shown.stdout
    );
}

#[test]
fn build_needs_only_the_variables_its_sources_use() {
    // A user pool id the functions read at run time has nothing to do with building them.
    let work = Workdir::new();
    let root = env!("CARGO_MANIFEST_DIR");
    let spec = format!(
        r#"
variables:
  COGNITO_USER_POOL_ID: {{ description: "no default, not set" }}
  SOURCE: {{ description: "no default either" }}
resources:
  lambda_function:
    authorizer:
      name: authorizer
      role: arn:aws:iam::123456789012:role/r
      source: {root}/lambdas/authorizer
      environment: {{ USER_POOL_ID: "${{var.COGNITO_USER_POOL_ID}}" }}
"#
    );
    work.write_spec(&spec);
    let built = work.run(&["build"]).expect_code(0);
    assert!(built.stdout.contains("lambda_function.authorizer: code_sha256 = "), "{}", built.stdout);
    // But a source that depends on an unset variable is named, with the variable.
    work.write_spec(&spec.replace(&format!("{root}/lambdas/authorizer"), "${var.SOURCE}"));
    let refused = work.run(&["build"]).expect_code(1);
    let err = refused.stderr_flat();
    assert!(
        err.contains("lambda_function.authorizer: `source` is not known before apply") && err.contains("SOURCE"),
        "{err}"
    );
}

#[test]
fn text_output_has_no_colour_when_it_is_not_a_terminal_even_without_no_color() {
    // Colour is for terminals only: piped into a file or a CI log, plan text stays plain,
    // whether or not NO_COLOR is set; --no-color is accepted everywhere.
    let env = Env::new();
    env.write_spec(SPEC);
    let out = env.command(&["plan"]).env_remove("NO_COLOR").output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("+ s3_bucket \"uploads\""), "{stdout}");
    assert!(!stdout.contains('\u{1b}') && !String::from_utf8_lossy(&out.stderr).contains('\u{1b}'), "{stdout:?}");
    env.run(&["plan", "--no-color"]).expect_code(0);
    // CLICOLOR_FORCE asks for colour where there is no terminal (a CI log that renders ANSI);
    // NO_COLOR and --no-color still win.
    let plan = |envs: &[(&str, &str)], extra: &[&str]| {
        let mut c = env.command(&[&["plan"], extra].concat());
        c.env_remove("NO_COLOR").env_remove("CLICOLOR").env_remove("TERM");
        for (k, v) in envs {
            c.env(k, v);
        }
        String::from_utf8_lossy(&c.output().expect("runs").stdout).into_owned()
    };
    assert!(plan(&[("CLICOLOR_FORCE", "1")], &[]).contains("\u{1b}["), "CLICOLOR_FORCE colours");
    assert!(!plan(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], &[]).contains('\u{1b}'), "NO_COLOR wins");
    assert!(!plan(&[("CLICOLOR_FORCE", "1")], &["--no-color"]).contains('\u{1b}'), "--no-color wins");
}
