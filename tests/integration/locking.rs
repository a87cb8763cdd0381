//! The state lock under concurrent commands.

use std::time::{Duration, Instant};

use crate::harness::Env;

#[test]
fn second_concurrent_apply_fails_with_the_lock_holder_and_state_stays_intact() {
    // While one apply runs, a second fails at once naming the holder; the first completes and
    // its state records every resource.
    let env = Env::new();
    let mut spec = String::from("resources:\n  s3_bucket:\n");
    for i in 0..60 {
        spec.push_str(&format!("    b{i}:\n      name: bucket-{i}\n      tags: {{ n: \"{i}\" }}\n      cors_rules: [{{ allowed_methods: [GET], allowed_origins: [\"*\"] }}]\n"));
    }
    env.write_spec(&spec);
    let mut first = env
        .command(&["apply", "--auto-approve", "--parallelism", "2"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("first apply starts");
    let lock = env.path("state/cruddur.json.lock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lock.exists() {
        assert!(Instant::now() < deadline, "the first apply never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = env.run(&["apply", "--auto-approve"]).expect_code(1);
    assert!(first.try_wait().expect("wait").is_none(), "the first apply finished too early to prove anything");
    assert!(second.stderr.contains("is locked by another command: apply by pid"), "{}", second.stderr);
    assert!(second.stderr.contains(&format!("pid {}", first.id())), "{}", second.stderr);

    assert!(first.wait().expect("first apply ends").success());
    let state = env.state();
    assert_eq!(state["resources"].as_object().expect("resources").len(), 60);
    assert!(!lock.exists(), "the lock is released when the apply ends");
    let buckets = env.block_on(env.s3().list_buckets().send()).expect("list");
    assert_eq!(buckets.buckets().len(), 60);
}

/// An apply of 60 buckets, one at a time, sent `signal` `times` times once it has recorded
/// its first resource.
fn signalled_apply(signal: &str, times: usize) -> (Env, std::process::Output) {
    let env = Env::new();
    let mut spec = String::from("resources:\n  s3_bucket:\n");
    for i in 0..60 {
        spec.push_str(&format!("    b{i}:\n      name: bucket-{i}\n      tags: {{ n: \"{i}\" }}\n"));
    }
    env.write_spec(&spec);
    let child = env
        .command(&["apply", "--auto-approve", "--parallelism", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("apply starts");
    // Each resource is recorded in the state's journal as it is created.
    let journal = env.path("state/cruddur.json.journal");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !journal.exists() {
        assert!(Instant::now() < deadline, "the apply never recorded a resource");
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..times {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("apply ends");
    (env, out)
}

/// Every bucket AWS has is in the state and no other; fewer than all were made.
fn state_matches_aws(env: &Env) {
    let mut in_state: Vec<String> = env.state()["resources"]
        .as_object()
        .expect("resources")
        .values()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect();
    let mut in_aws: Vec<String> = env
        .block_on(env.s3().list_buckets().send())
        .expect("list")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    in_state.sort();
    in_aws.sort();
    assert_eq!(in_state, in_aws, "every bucket AWS has is in the state, and no other");
    assert!(in_aws.len() < 60, "the signal stopped the apply early");
}

#[test]
fn sigint_or_sigterm_during_apply_stops_new_work_releases_the_lock_and_exits_130_or_143() {
    // A stop signal (Ctrl-C, or a CI runner's SIGTERM) stops new work; what was created is in
    // the state, nothing else is, and the lock is released, so the next apply finishes the job.
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let (env, out) = signalled_apply(signal, 1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "SIG{signal} is said in the exit code: {stderr}");
        assert!(stderr.contains("received: waiting for the calls in flight"), "{stderr}");
        assert!(!env.path("state/cruddur.json.lock").exists(), "the lock is released");
        assert!(!env.path("state/cruddur.json.journal").exists(), "the journal was folded into the state");
        state_matches_aws(&env);
        env.run(&["apply", "--auto-approve"]).expect_code(0);
        assert_eq!(env.block_on(env.s3().list_buckets().send()).expect("list").buckets().len(), 60);
    }
}

#[test]
fn a_second_stop_signal_exits_at_once_and_the_next_apply_finishes_from_the_journal() {
    let (env, out) = signalled_apply("TERM", 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("received again: exiting now"), "{stderr}");
    // Nothing waited for the calls in flight: the next apply takes over the dead command's
    // lock, replays its journal and makes the rest, nothing twice.
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(env.block_on(env.s3().list_buckets().send()).expect("list").buckets().len(), 60);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_killed_apply_loses_nothing_it_recorded_and_the_next_apply_finishes() {
    // SIGKILL gives no chance to save: what was recorded is only in the journal. The next
    // command replays it, so the state lists every bucket AWS has (the create in flight when it
    // died as an intent), and the next apply takes over the dead apply's lock, adopts what
    // that create made and creates the rest.
    let env = Env::new();
    let mut spec = String::from("resources:\n  s3_bucket:\n");
    for i in 0..60 {
        spec.push_str(&format!("    b{i}:\n      name: bucket-{i}\n      tags: {{ n: \"{i}\" }}\n"));
    }
    env.write_spec(&spec);
    let mut child = env
        .command(&["apply", "--auto-approve", "--parallelism", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("apply starts");
    let journal = env.path("state/cruddur.json.journal");
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = |j: String| j.lines().filter(|l| !l.contains("\"status\"")).count();
    while std::fs::read_to_string(&journal).map_or(0, ready) < 3 {
        assert!(Instant::now() < deadline, "the apply never recorded three resources");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert!(!env.path("state/cruddur.json").exists(), "nothing but the journal was written");

    let listed = env.run(&["state", "list"]).expect_code(0);
    let in_state: Vec<&str> = listed.stdout.lines().collect();
    let in_aws: Vec<String> = env
        .block_on(env.s3().list_buckets().send())
        .expect("list")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    assert!(in_state.len() >= 3, "the journal's resources are in the state: {in_state:?}");
    // Every bucket AWS has is in the state, finished or as the intent of the create in flight.
    for name in &in_aws {
        let n: usize = name.trim_start_matches("bucket-").parse().expect("bucket-N");
        assert!(in_state.iter().any(|l| l.starts_with(&format!("s3_bucket.b{n}\t"))), "{name} is not recorded");
    }

    // The killed process left its lock; its holder is provably gone, so it is taken over.
    let second = env.run(&["apply", "--auto-approve"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("Took over the state lock"), "{}", second.stderr);
    assert_eq!(env.block_on(env.s3().list_buckets().send()).expect("list").buckets().len(), 60);
    assert!(!journal.exists(), "folded into the state");
    assert_eq!(env.state()["resources"].as_object().expect("resources").len(), 60);
}

/// The bucket's `value` tag, through S3.
fn tag_value(env: &Env) -> String {
    let tags = env.block_on(env.s3().get_bucket_tagging().bucket("waited-bucket").send()).expect("tags");
    tags.tag_set().iter().find(|t| t.key() == "value").map(|t| t.value().to_string()).expect("the value tag")
}

#[test]
fn twenty_concurrent_applies_with_a_lock_timeout_each_wait_their_turn_and_lose_nothing() {
    let env = Env::new();
    env.write_spec(
        "variables:\n  VALUE: { default: start }\nresources:\n  s3_bucket:\n    b:\n      name: waited-bucket\n      \
         tags: { value: \"${var.VALUE}\" }\n",
    );
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    // What one apply that changes the tag adds to the serial.
    let before = env.state()["serial"].as_u64().expect("serial");
    env.command(&["apply", "--auto-approve"]).env("VALUE", "one").output().expect("runs");
    let per_apply = env.state()["serial"].as_u64().expect("serial") - before;
    assert!(per_apply >= 1);

    let start = env.state()["serial"].as_u64().expect("serial");
    let children: Vec<_> = (0..20)
        .map(|i| {
            env.command(&["apply", "--auto-approve", "--lock-timeout", "10m"])
                .env("VALUE", format!("v{i}"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("apply starts")
        })
        .collect();
    let mut waited = 0;
    for child in children {
        let out = child.wait_with_output().expect("apply ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "every apply succeeds in its turn: {stderr}");
        waited += usize::from(stderr.contains("Waiting for the state lock of") && stderr.contains("held by"));
    }
    assert!(waited > 0, "some applies waited, saying who held the lock");
    let serial = env.state()["serial"].as_u64().expect("serial");
    assert_eq!(serial - start, 20 * per_apply, "each apply changed the tag once and recorded it, none lost");
    let last = tag_value(&env);
    assert!(last.starts_with('v'), "{last}");
    // The state and AWS agree on the value the last apply wrote.
    env.command(&["plan", "--detailed-exitcode"])
        .env("VALUE", &last)
        .output()
        .map(|o| o.status.code())
        .map_or_else(|e| panic!("plan runs: {e}"), |code| assert_eq!(code, Some(0), "the state holds what AWS holds"));
    assert!(!env.path("state/cruddur.json.lock").exists(), "the lock is released");
}

#[test]
fn a_lock_timeout_that_runs_out_names_the_holder_and_how_long_it_waited() {
    let env = Env::new();
    env.write_spec("resources:\n  s3_bucket:\n    b:\n      name: timed-bucket\n");
    // A lock held by a live process (this test's), as a running command holds it.
    std::fs::create_dir_all(env.path("state")).expect("mkdir");
    // On another host: never taken over as a dead holder's.
    let holder = serde_json::json!({
        "id": "held-by-test", "pid": std::process::id(), "host": "elsewhere", "operation": "apply",
        "created": 1_796_000_000u64
    });
    std::fs::write(env.path("state/cruddur.json.lock"), holder.to_string()).expect("lock");
    let out = env.run(&["apply", "--auto-approve", "--lock-timeout", "1s"]).expect_code(1);
    assert!(out.stderr.contains("Waiting for the state lock of"), "{}", out.stderr);
    assert!(out.stderr.contains("still locked after waiting 1s (--lock-timeout)"), "{}", out.stderr);
    let bad = env.run(&["apply", "--auto-approve", "--lock-timeout", "soon"]).expect_code(1);
    assert!(bad.stderr.contains("is not a duration such as 90s or 10m"), "{}", bad.stderr);
}
