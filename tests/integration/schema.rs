//! The JSON Schema of specs: committed, current, and strict enough to catch mistakes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Workdir;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/cruddur-spec.schema.json");

/// The Python beside moto_server (moto brings jsonschema and PyYAML).
fn python() -> PathBuf {
    let moto = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"));
    let beside = moto.with_file_name("python");
    if beside.exists() { beside } else { PathBuf::from("python3") }
}

/// Validates a YAML file against the committed schema; the errors, if any.
fn validate(spec: &Path) -> Vec<String> {
    let script = "import json, sys, yaml, jsonschema\n\
                  schema = json.load(open(sys.argv[1]))\n\
                  doc = yaml.safe_load(open(sys.argv[2]))\n\
                  for e in jsonschema.Draft202012Validator(schema).iter_errors(doc): print(e.json_path, e.message)\n";
    let out = Command::new(python()).args(["-c", script, COMMITTED]).arg(spec).output().expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn committed_schema_is_what_the_binary_generates() {
    // schema/cruddur-spec.schema.json must be regenerated when a kind changes.
    let env = Workdir::new();
    let generated = env.run(&["schema"]).expect_code(0).stdout;
    let committed = std::fs::read_to_string(COMMITTED).expect("committed schema");
    assert!(generated == committed, "regenerate it: cargo run -- schema > schema/cruddur-spec.schema.json");
}

#[test]
fn the_real_spec_validates_and_a_misspelled_attribute_does_not() {
    // Editors using the schema accept specs/cruddur.yaml, and flag an attribute typo.
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/cruddur.yaml");
    assert_eq!(validate(&spec), Vec::<String>::new());
    assert!(
        std::fs::read_to_string(&spec)
            .expect("spec")
            .starts_with("# yaml-language-server: $schema=../schema/cruddur-spec.schema.json\n")
    );
    let env = Workdir::new();
    env.write("typo.yaml", "resources:\n  s3_bucket:\n    b:\n      name: b\n      cros_rules: []\n");
    let errors = validate(&env.path("typo.yaml"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("cros_rules"), "{errors:?}");
}
