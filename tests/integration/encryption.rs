//! Client-side envelope encryption of the state, its journal and backup, and saved plans, on
//! moto's KMS: nothing of the stack is stored in plain text; a missing or wrong key stops the
//! command before it writes; `state encrypt|decrypt` move between the forms.

use std::path::Path;

use crate::harness::Env;
use crate::hostile::run_killed_after;
use crate::proxy::Mode;

const STATE: &str = "state/cruddur.json";

/// Names that appear in the stack's state and plan: none may be found in what is stored.
const SECRETS: &[&str] = &["enc-avatars-bucket", "enc-topic", "lineage", "serial", "s3_bucket"];

fn spec(env: &Env, encryption: Option<&str>, tag: &str) {
    let state = encryption.map(|k| format!("state:\n  encryption: {k}\n")).unwrap_or_default();
    env.write_spec(&format!(
        "{state}resources:
  s3_bucket:
    avatars:
      name: enc-avatars-bucket
      tags: {{ stage: {tag} }}
  sns_topic:
    events:
      name: enc-topic
"
    ));
}

/// A new KMS key with an alias; its ARN.
fn new_key(env: &Env, alias: &str) -> String {
    let kms = aws_sdk_kms::Client::new(&env.sdk_config());
    let key = env.block_on(kms.create_key().description("cruddur state").send()).expect("create key");
    let meta = key.key_metadata().expect("metadata");
    env.block_on(kms.create_alias().alias_name(alias).target_key_id(meta.key_id()).send()).expect("alias");
    meta.arn().expect("arn").to_string()
}

fn assert_sealed(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8_lossy(&bytes);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(line.starts_with("{\"cruddur_encrypted\":1"), "{} holds a plain line: {line}", path.display());
    }
    for secret in SECRETS {
        assert!(!text.contains(secret), "{} holds `{secret}` in plain text:\n{text}", path.display());
    }
}

fn bucket_tag(env: &Env) -> String {
    let tags = env.block_on(env.s3().get_bucket_tagging().bucket("enc-avatars-bucket").send()).expect("tags");
    tags.tag_set().iter().find(|t| t.key() == "stage").map(|t| t.value().to_string()).unwrap_or_default()
}

#[test]
fn state_backup_journal_and_saved_plans_are_ciphertext_and_every_command_reads_them() {
    let env = Env::new();
    new_key(&env, "alias/cruddur-state");
    spec(&env, Some("kms:alias/cruddur-state"), "one");
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_sealed(&env.path(STATE));
    assert_eq!(bucket_tag(&env), "one");
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    env.run(&["drift"]).expect_code(0);
    let listed = env.run(&["state", "list"]).expect_code(0);
    assert!(listed.stdout.contains("s3_bucket.avatars\tenc-avatars-bucket"), "{}", listed.stdout);

    // A saved plan is sealed too, and applies.
    spec(&env, Some("kms:alias/cruddur-state"), "two");
    env.run(&["plan", "--out", "change.plan"]).expect_code(0);
    assert_sealed(&env.path("change.plan"));
    env.run(&["apply", "change.plan"]).expect_code(0);
    assert_eq!(bucket_tag(&env), "two");
    assert_sealed(&env.path(STATE));
    assert_sealed(&env.path("state/cruddur.json.backup"));
}

#[test]
fn a_journal_written_by_a_killed_encrypted_apply_is_sealed_line_by_line() {
    // Three buckets applied one at a time: a kill after the second bucket's requests leaves
    // journal lines; each is an envelope, and replaying them loses nothing.
    let env = Env::with_proxy(Mode::Pass, 11);
    new_key(&env, "alias/cruddur-state");
    let mut text = String::from("state:\n  encryption: kms:alias/cruddur-state\nresources:\n  s3_bucket:\n");
    for n in 0..3 {
        text.push_str(&format!("    b{n}:\n      name: enc-avatars-bucket-{n}\n"));
    }
    env.write_spec(&text);
    let mut journaled = false;
    for k in [4, 6, 8, 10] {
        assert!(run_killed_after(&env, &["apply", "--auto-approve", "--parallelism", "1"], k), "killed at {k}");
        let journal = env.path("state/cruddur.json.journal");
        if journal.exists() {
            assert_sealed(&journal);
            journaled = true;
            break;
        }
    }
    assert!(journaled, "no kill point left a journal: the test proves nothing");
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    let listed = env.block_on(env.s3().list_buckets().send()).expect("list");
    assert_eq!(listed.buckets().len(), 3, "no orphan, no duplicate");
}

#[test]
fn a_missing_or_wrong_key_is_a_clear_error_and_nothing_is_written() {
    let env = Env::with_proxy(Mode::Pass, 3);
    let first = new_key(&env, "alias/first");
    let second = new_key(&env, "alias/second");
    spec(&env, None, "one");
    env.run(&["apply", "--auto-approve", "--state-encryption", "kms:alias/first"]).expect_code(0);
    let sealed = std::fs::read(env.path(STATE)).expect("state");
    spec(&env, None, "two");

    // No key: refused, naming the key it is sealed with.
    let run = env.run(&["apply", "--auto-approve"]).expect_code(1);
    let err = run.stderr_flat();
    assert!(err.contains("encrypted with KMS key") && err.contains(&first), "{err}");
    assert!(err.contains("--state-encryption"), "says how to give the key: {err}");

    // Another key: refused, naming both.
    let run = env.run(&["apply", "--auto-approve", "--state-encryption", "kms:alias/second"]).expect_code(1);
    let err = run.stderr_flat();
    assert!(err.contains(&first) && err.contains(&second), "{err}");
    assert!(err.contains("state encrypt"), "says how to move to the new key: {err}");

    // The key disabled: KMS's refusal is named. (moto decrypts with a disabled key; the strict
    // emulator in front of it refuses as AWS does, for a key disabled through it.)
    let strict = env.proxy().set_strict(crate::strict::Clocks::short());
    let through_proxy = aws_config::SdkConfig::builder()
        .endpoint_url(env.proxy().endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
            aws_sdk_kms::config::Credentials::new("testing", "testing", None, None, "tests"),
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let kms = aws_sdk_kms::Client::new(&through_proxy);
    // moto fails (500) on DisableKey/EnableKey given the ARN: the key id.
    let first_id = first.rsplit('/').next().expect("key id");
    env.block_on(kms.disable_key().key_id(first_id).send()).expect("disable");
    let run = env.run(&["apply", "--auto-approve", "--state-encryption", "kms:alias/first"]).expect_code(1);
    let err = run.stderr_flat();
    assert!(err.contains("Decrypt") && err.contains("DisabledException"), "{err}");
    assert_eq!(strict.refusals(), vec!["disabled KMS key: kms TrentService.Decrypt".to_string()]);
    env.block_on(kms.enable_key().key_id(first_id).send()).expect("enable");

    // Nothing was written, in the state or in AWS.
    assert_eq!(std::fs::read(env.path(STATE)).expect("state"), sealed, "the state is untouched");
    assert!(!env.path("state/cruddur.json.backup").exists());
    assert_eq!(bucket_tag(&env), "one", "no AWS change");

    // A plain state where a key is asked for: refused, with the migration command.
    let plain = Env::new();
    new_key(&plain, "alias/first");
    spec(&plain, None, "one");
    plain.run(&["apply", "--auto-approve"]).expect_code(0);
    let before = std::fs::read(plain.path(STATE)).expect("state");
    let run = plain.run(&["plan", "--state-encryption", "kms:alias/first"]).expect_code(1);
    let err = run.stderr_flat();
    assert!(err.contains("plain text") && err.contains("state encrypt --key kms:alias/first"), "{err}");
    assert_eq!(std::fs::read(plain.path(STATE)).expect("state"), before);

    // A sealed state whose ciphertext was altered is refused, not misread.
    let mut envelope: serde_json::Value = serde_json::from_slice(&sealed).expect("an envelope");
    let ciphertext = envelope["ciphertext"].as_str().expect("ciphertext").to_string();
    let flipped =
        if ciphertext.starts_with('A') { ciphertext.replacen('A', "B", 1) } else { format!("A{}", &ciphertext[1..]) };
    envelope["ciphertext"] = serde_json::json!(flipped);
    std::fs::write(env.path(STATE), serde_json::to_vec(&envelope).expect("json")).expect("write");
    let run = env.run(&["plan", "--state-encryption", "kms:alias/first"]).expect_code(1);
    assert!(run.stderr_flat().contains("does not authenticate"), "{}", run.stderr);
}

#[test]
fn state_encrypt_and_decrypt_migrate_a_file_and_an_s3_state_and_leave_no_plain_copy() {
    let env = Env::new();
    let arn = new_key(&env, "alias/cruddur-state");
    // Two applies: an earlier state is kept in the history before the state changes form.
    for tag in ["zero", "one"] {
        spec(&env, None, tag);
        env.run(&["apply", "--auto-approve"]).expect_code(0);
    }
    let plain: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path(STATE)).expect("state")).expect("plain JSON");
    assert_eq!(history_files(&env).len(), 1, "the first apply's state is kept");

    let out = env.run(&["state", "encrypt", "--key", "kms:alias/cruddur-state"]).expect_code(0);
    assert!(out.stdout.contains("sealed with kms:alias/cruddur-state"), "{}", out.stdout);
    assert_sealed(&env.path(STATE));
    assert_sealed(&env.path("state/cruddur.json.backup"));
    let kept = history_files(&env);
    assert_eq!(kept.len(), 2, "the state before encrypt joined the first");
    kept.iter().for_each(|p| assert_sealed(p));
    let listed = env.run(&["state", "history", "--state-encryption", "kms:alias/cruddur-state"]).expect_code(0);
    // `state encrypt` keeps the serial (the content is unchanged): the state it started from
    // is kept, sealed, under the current one's serial, and listed once.
    assert_eq!(
        listed.stdout.lines().count(),
        3,
        "a heading, the first apply's and the current one:\n{}",
        listed.stdout
    );
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path(STATE)).expect("state")).expect("envelope");
    assert_eq!(envelope["kms_key_id"], serde_json::json!(arn));
    env.run(&["plan", "--detailed-exitcode", "--state-encryption", "kms:alias/cruddur-state"]).expect_code(0);
    // The key's ARN names the same key as its alias.
    env.run(&["plan", "--detailed-exitcode", "--state-encryption", &format!("kms:{arn}")]).expect_code(0);

    // The deployer's policies name the key: reads decrypt, writers also make data keys.
    let flag = format!("kms:{arn}");
    let policy = |command: &str| {
        let out = env.run(&["iam-policy", "--for", command, "--state-encryption", &flag]).expect_code(0);
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("policy");
        doc["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .filter(|s| s["Resource"] == serde_json::json!([arn]) || s["Resource"] == serde_json::json!(arn))
            .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
            .map(|a| a.as_str().expect("action").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(policy("drift"), ["kms:Decrypt", "kms:DescribeKey"]);
    assert_eq!(policy("apply"), ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]);

    env.run(&["state", "decrypt"]).expect_code(0);
    let back: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path(STATE)).expect("state")).expect("plain JSON again");
    assert_eq!(back["resources"], plain["resources"], "the content is unchanged");
    assert_eq!(back["lineage"], plain["lineage"]);
    let backup = std::fs::read_to_string(env.path("state/cruddur.json.backup")).expect("backup");
    assert!(!backup.contains("cruddur_encrypted"), "the backup is plain too");
    for kept in history_files(&env) {
        let text = std::fs::read_to_string(&kept).expect("kept");
        assert!(!text.contains("cruddur_encrypted") && text.contains("enc-avatars-bucket"), "{}", kept.display());
    }
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);

    // The S3 backend: the object and its backup hold only ciphertext.
    let remote = "s3://enc-team-state/cruddur.json";
    env.block_on(env.s3().create_bucket().bucket("enc-team-state").send()).expect("state bucket");
    let flags = ["--state", remote, "--state-encryption", "kms:alias/cruddur-state"];
    let with = |args: &[&'static str]| -> Vec<&'static str> { [args, &flags[..]].concat() };
    for tag in ["one", "two"] {
        env.write_spec(&format!(
            "resources:\n  s3_bucket:\n    remote:\n      name: enc-avatars-bucket-remote\n      tags: {{ stage: {tag} }}\n"
        ));
        env.run(&with(&["apply", "--auto-approve"])).expect_code(0);
    }
    let listed =
        env.block_on(env.s3().list_objects_v2().bucket("enc-team-state").prefix("cruddur.json.history/").send());
    let kept: Vec<String> =
        listed.expect("list").contents().iter().filter_map(|o| o.key()).map(str::to_string).collect();
    assert_eq!(kept.len(), 1, "the first apply's state is kept: {kept:?}");
    for key in ["cruddur.json", "cruddur.json.backup", kept[0].as_str()] {
        let object = env.block_on(env.s3().get_object().bucket("enc-team-state").key(key).send()).expect(key);
        let bytes = env.block_on(object.body.collect()).expect("body").into_bytes();
        let path = env.path(&format!("downloaded-{}", key.replace('/', "-")));
        std::fs::write(&path, &bytes).expect("write");
        assert_sealed(&path);
    }
    env.run(&with(&["plan", "--detailed-exitcode"])).expect_code(0);
    let run = env.run(&["plan", "--state", remote]).expect_code(1);
    assert!(run.stderr_flat().contains("encrypted with KMS key"), "{}", run.stderr);
}

/// The earlier states kept beside the local state.
fn history_files(env: &Env) -> Vec<std::path::PathBuf> {
    let dir = env.path("state/cruddur.json.history");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    files
}

/// The state's resources as `state list` shows them (each backend, each form).
fn listed(env: &Env, flags: &[&str]) -> String {
    let args: Vec<&str> = ["state", "list"].iter().copied().chain(flags.iter().copied()).collect();
    env.run(&args).expect_code(0).stdout
}

#[test]
fn state_encrypt_and_decrypt_killed_after_any_request_are_finished_by_running_them_again() {
    // Killed right after KMS or S3 answered request N, for every N: the same command run again
    // finishes (taking over the dead command's lock, on S3 too), the state reads whole in the
    // new form with nothing lost, and the next plan is empty.
    use crate::proxy::Mode;
    let env = Env::with_proxy(Mode::Pass, 0);
    new_key(&env, "alias/cruddur-state");
    env.block_on(env.s3().create_bucket().bucket("enc-crash-state").send()).expect("state bucket");
    spec(&env, None, "one");
    let key = "kms:alias/cruddur-state";
    for backend in [&[][..], &["--state", "s3://enc-crash-state/cruddur.json"][..]] {
        if !backend.is_empty() {
            // Other resources for the S3 state: the local state's stay where they are.
            env.write_spec("resources:\n  s3_bucket:\n    remote:\n      name: enc-crash-remote\n");
        }
        env.run(&[&["apply", "--auto-approve"][..], backend].concat()).expect_code(0);
        let resources = listed(&env, backend);
        let sealed: Vec<&str> = [backend, &["--state-encryption", key][..]].concat();
        for (command, form) in
            [(&["state", "encrypt", "--key", key][..], &sealed), (&["state", "decrypt"][..], &backend.to_vec())]
        {
            let args: Vec<&str> = [command, backend].concat();
            // The opposite command, to start each kill from the same form.
            let undo: Vec<&str> = if command[1] == "encrypt" {
                [&["state", "decrypt"][..], backend].concat()
            } else {
                [&["state", "encrypt", "--key", key][..], backend].concat()
            };
            env.proxy().set_mode(Mode::Pass);
            env.run(&args).expect_code(0);
            let reference: Vec<String> =
                env.proxy().seen().iter().map(|s| format!("{} {}", s.service, s.operation)).collect();
            let mut killed = 0;
            for k in 1..=reference.len() {
                let what = format!("{args:?} killed after request {k} ({})", reference[k - 1]);
                env.run(&undo).expect_code(0);
                killed += usize::from(crate::hostile::run_killed_after(&env, &args, k));
                let again = env.run(&args);
                assert_eq!(again.code, 0, "{what}, run again:\n{}\n{}", again.stdout, again.stderr);
                assert_eq!(listed(&env, form), resources, "{what}: nothing lost");
                let plan: Vec<&str> = [&["plan", "--detailed-exitcode"][..], form].concat();
                env.run(&plan).expect_code(0);
                if backend.is_empty() && command[1] == "encrypt" {
                    assert_sealed(&env.path(STATE));
                    assert_sealed(&env.path("state/cruddur.json.backup"));
                }
            }
            eprintln!("{args:?}: {} requests, killed after each: {reference:?}", reference.len());
            assert_eq!(killed, reference.len(), "{args:?}: every run was killed");
        }
    }
}

#[test]
fn state_commands_on_s3_under_transient_failures_and_lost_answers_converge_on_the_first_try_for_five_seeds() {
    // 20% of requests fail before AWS sees them and 5% lose their answer after the work was
    // done, KMS's GenerateDataKey, Decrypt and DescribeKey and the state bucket's own calls
    // included: state encrypt, state decrypt, import and state rm each succeed on the first
    // run, with the state as the command meant.
    use crate::proxy::{Fate, Mode};
    let remote = "s3://enc-fault-state/cruddur.json";
    for seed in 1..=5 {
        let env = Env::with_proxy(Mode::Pass, seed);
        new_key(&env, "alias/cruddur-state");
        env.block_on(env.s3().create_bucket().bucket("enc-fault-state").send()).expect("state bucket");
        env.block_on(env.s3().create_bucket().bucket("fault-by-hand").send()).expect("a bucket by hand");
        env.write_spec("resources:\n  s3_bucket:\n    remote:\n      name: enc-fault-remote\n    adopted:\n      name: fault-by-hand\n");
        env.run(&["apply", "--auto-approve", "--state", remote, "--target", "s3_bucket.remote"]).expect_code(0);
        let key = "kms:alias/cruddur-state";
        let steps: [(&[&str], &[&str]); 4] = [
            (&["state", "encrypt", "--key", key, "--state", remote], &["--state", remote, "--state-encryption", key]),
            (
                &["import", "s3_bucket.adopted", "fault-by-hand", "--state", remote, "--state-encryption", key],
                &["--state", remote, "--state-encryption", key],
            ),
            (
                &["state", "rm", "s3_bucket.adopted", "--state", remote, "--state-encryption", key],
                &["--state", remote, "--state-encryption", key],
            ),
            (&["state", "decrypt", "--state", remote], &["--state", remote]),
        ];
        let mut injected = 0;
        for (args, reading) in steps {
            env.proxy().set_mode(Mode::Faults { transient: 0.20, lost: 0.05, latency: std::time::Duration::ZERO });
            let run = env.run(args);
            let seen = env.proxy().seen();
            env.proxy().set_mode(Mode::Pass);
            injected += seen.iter().filter(|s| s.fate != Fate::Forwarded).count();
            let fates: Vec<String> = seen.iter().map(|s| format!("{} {:?}", s.label(), s.fate)).collect();
            assert_eq!(run.code, 0, "seed {seed}, {args:?}:\n{}\n{}\n{}", run.stdout, run.stderr, fates.join("\n"));
            let listed: Vec<&str> = [&["state", "list"][..], reading].concat();
            let list = env.run(&listed).expect_code(0).stdout;
            let adopted = args[0] == "import";
            assert_eq!(list.contains("s3_bucket.adopted"), adopted, "seed {seed}, {args:?}: {list}");
            assert!(list.contains("s3_bucket.remote\tenc-fault-remote"), "seed {seed}, {args:?}: nothing lost: {list}");
        }
        eprintln!("seed {seed}: {injected} requests failed or lost across the four commands");
        assert!(injected > 0, "seed {seed}: faults were injected");
    }
}
