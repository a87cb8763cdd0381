//! The S3 state backend: a team's shared state with a conditional-write lock.

use std::time::{Duration, Instant};

use cruddur_infra::provider::{Aws, AwsOptions};
use cruddur_infra::state::{Codec, S3State, StateBackend, StateError};

use crate::harness::Env;

const STATE: &str = "s3://team-state/cruddur/state.json";

fn many_buckets(env: &Env, n: usize) {
    let mut spec = String::from("resources:\n  s3_bucket:\n");
    for i in 0..n {
        spec.push_str(&format!("    b{i}:\n      name: bucket-{i}\n      tags: {{ n: \"{i}\" }}\n"));
    }
    env.write_spec(&spec);
    env.block_on(env.s3().create_bucket().bucket("team-state").send()).expect("state bucket");
}

fn object_exists(env: &Env, key: &str) -> bool {
    env.block_on(env.s3().head_object().bucket("team-state").key(key).send()).is_ok()
}

fn wait_for(env: &Env, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !object_exists(env, key) {
        assert!(Instant::now() < deadline, "{key} never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn remote_state(env: &Env) -> serde_json::Value {
    let out = env
        .block_on(env.s3().get_object().bucket("team-state").key("cruddur/state.json").send())
        .expect("state object");
    let bytes = env.block_on(out.body.collect()).expect("body").into_bytes();
    serde_json::from_slice(&bytes).expect("the state object is valid JSON")
}

fn managed_buckets(env: &Env) -> Vec<String> {
    let out = env.block_on(env.s3().list_buckets().send()).expect("list");
    let mut names: Vec<String> =
        out.buckets().iter().filter_map(|b| b.name()).filter(|n| *n != "team-state").map(str::to_string).collect();
    names.sort();
    names
}

#[test]
fn two_concurrent_applies_on_the_s3_backend_one_fails_with_the_holder() {
    // The lock object is created with If-None-Match: *, so the second apply fails at once
    // naming the first; the first finishes, its state object is complete, the lock is gone.
    let env = Env::new();
    many_buckets(&env, 60);
    let mut first = env
        .command(&["apply", "--auto-approve", "--parallelism", "2", "--state", STATE])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("first");
    wait_for(&env, "cruddur/state.json.lock");
    let second = env.run(&["apply", "--auto-approve", "--state", STATE]).expect_code(1);
    assert!(first.try_wait().expect("wait").is_none(), "the first apply finished too early to prove anything");
    let message = second.stderr_flat();
    assert!(
        message.contains(&format!("{STATE} is locked by another command: apply by pid {}", first.id())),
        "{message}"
    );
    assert!(first.wait().expect("first ends").success());
    assert_eq!(remote_state(&env)["resources"].as_object().expect("resources").len(), 60);
    assert!(!object_exists(&env, "cruddur/state.json.lock"), "released");
    env.run(&["plan", "--detailed-exitcode", "--state", STATE]).expect_code(0);
}

#[test]
fn ctrl_c_on_the_s3_backend_releases_the_lock_and_keeps_state_and_aws_in_step() {
    // Interrupted mid-apply: the lock object is deleted and the state object lists exactly
    // the buckets that exist.
    let env = Env::new();
    many_buckets(&env, 60);
    let child = env
        .command(&["apply", "--auto-approve", "--parallelism", "1", "--state", STATE])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("apply");
    wait_for(&env, "cruddur/state.json");
    let sent = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    assert_eq!(child.wait_with_output().expect("ends").status.code(), Some(130), "SIGINT is said in the exit code");
    assert!(!object_exists(&env, "cruddur/state.json.lock"), "released on Ctrl-C");
    let mut in_state: Vec<String> = remote_state(&env)["resources"]
        .as_object()
        .expect("resources")
        .values()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect();
    in_state.sort();
    let in_aws = managed_buckets(&env);
    assert_eq!(in_state, in_aws);
    assert!(in_aws.len() < 60, "stopped early");
}

#[test]
fn a_stale_lock_is_reported_with_holder_and_age_and_force_unlock_removes_it() {
    // A lock left by a command that died says who held it and how long ago; force-unlock with
    // its id frees the state.
    let env = Env::new();
    many_buckets(&env, 1);
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() - 7200;
    let lock =
        format!(r#"{{"id":"dead-beef","pid":4242,"host":"ci-runner-7","operation":"apply","created":{created}}}"#);
    let put = env.s3().put_object().bucket("team-state").key("cruddur/state.json.lock").body(lock.into_bytes().into());
    env.block_on(put.send()).expect("stale lock");
    let locked = env.run(&["apply", "--auto-approve", "--state", STATE]).expect_code(1);
    let message = locked.stderr_flat();
    assert!(message.contains("apply by pid 4242 on ci-runner-7") && message.contains("(2h"), "{message}");
    assert!(message.contains("cruddur-infra force-unlock dead-beef"), "{message}");
    env.run(&["force-unlock", "wrong-id", "--state", STATE]).expect_code(1);
    env.run(&["force-unlock", "dead-beef", "--state", STATE]).expect_code(0);
    env.run(&["apply", "--auto-approve", "--state", STATE]).expect_code(0);
    assert_eq!(managed_buckets(&env), vec!["bucket-0"]);
}

#[test]
fn a_save_over_a_state_changed_by_someone_else_is_refused() {
    // Saves are guarded with If-Match on the ETag last seen: a writer that ignored the lock is
    // never overwritten silently.
    let env = Env::new();
    env.block_on(env.s3().create_bucket().bucket("team-state").send()).expect("bucket");
    let config = env.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(env.moto.endpoint())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests"))
            .load(),
    );
    let aws = Aws::with_config(config, AwsOptions { s3_force_path_style: true, ..Default::default() });
    let store = S3State::new(&aws, "team-state", "shared.json", Codec::plain());
    let mut state = env.block_on(store.load()).expect("empty");
    state.serial = 1;
    env.block_on(store.save(&state)).expect("first save creates it");
    state.serial = 2;
    env.block_on(store.save(&state)).expect("second save matches the ETag it wrote");
    let sneaky = env
        .s3()
        .put_object()
        .bucket("team-state")
        .key("shared.json")
        .body(b"{\"version\":1,\"serial\":99,\"lineage\":\"x\"}".to_vec().into());
    env.block_on(sneaky.send()).expect("someone else writes");
    state.serial = 3;
    let refused = env.block_on(store.save(&state));
    assert!(matches!(refused, Err(StateError::Conflict { .. })), "{refused:?}");
    let after = env.block_on(S3State::new(&aws, "team-state", "shared.json", Codec::plain()).load()).expect("load");
    assert_eq!(after.serial, 99, "the other writer's state was not overwritten");
}

#[test]
fn a_state_bucket_and_a_kms_key_in_another_region_are_used_where_they_live() {
    // The team's state bucket and its KMS key live in eu-west-1; the command runs against
    // us-east-1 through the strict emulator, which redirects (301) a bucket request sent to the
    // wrong region, and moto keeps KMS keys per region: apply, plan and drift find both.
    let env = Env::with_proxy(crate::proxy::Mode::Pass, 0);
    let strict = env.proxy().set_strict(crate::strict::Clocks::short());
    let eu = env.block_on(async {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(env.moto.endpoint())
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "t"))
            .load()
            .await
    });
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&eu).force_path_style(true).build());
    let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
        .build();
    env.block_on(s3.create_bucket().bucket("eu-state").create_bucket_configuration(location).send()).expect("bucket");
    let key = env.block_on(aws_sdk_kms::Client::new(&eu).create_key().send()).expect("key");
    let key_arn = key.key_metadata().expect("metadata").arn().expect("arn").to_string();
    assert!(key_arn.contains(":eu-west-1:"), "{key_arn}");
    env.write_spec("resources:\n  sns_topic:\n    t: { name: regional-topic }\n");
    let state = "s3://eu-state/cruddur.json";
    let encryption = format!("kms:{key_arn}");
    let args = |cmd: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        all.extend(["--state".into(), state.into(), "--state-encryption".into(), encryption.clone()]);
        all
    };
    let run = |cmd: &[&str]| {
        let args = args(cmd);
        env.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run(&["apply", "--auto-approve"]).expect_code(0);
    run(&["plan", "--detailed-exitcode"]).expect_code(0);
    run(&["drift"]).expect_code(0);
    let stored = env.block_on(s3.get_object().bucket("eu-state").key("cruddur.json").send()).expect("the state object");
    let bytes = env.block_on(stored.body.collect()).expect("body").into_bytes();
    let envelope: serde_json::Value = serde_json::from_slice(&bytes).expect("an envelope");
    assert_eq!(envelope["kms_key_id"], key_arn.as_str(), "sealed with the eu-west-1 key");
    let redirected = strict.refusals().iter().filter(|r| r.starts_with("bucket in another region")).count();
    // One redirect per command (apply, plan, drift): after it the bucket's region is used.
    assert_eq!(redirected, 3, "{:?}", strict.refusals());
}

#[test]
fn import_and_state_rm_killed_after_any_request_are_finished_by_running_them_again_on_either_backend() {
    // Killed right after AWS or the state bucket answered request N, for every N: the same
    // command run again finishes (taking over the dead command's lock), the state says exactly
    // what the command meant, and the bucket imported is never touched.
    use crate::proxy::Mode;
    let env = Env::with_proxy(Mode::Pass, 0);
    env.block_on(env.s3().create_bucket().bucket("team-state").send()).expect("state bucket");
    env.block_on(env.s3().create_bucket().bucket("made-by-hand").send()).expect("a bucket made by hand");
    env.write_spec("resources:\n  s3_bucket:\n    adopted:\n      name: made-by-hand\n");
    let imported = |env: &Env, backend: &[&str]| -> Vec<String> {
        let args: Vec<&str> = [&["state", "list"][..], backend].concat();
        let out = env.run(&args);
        out.stdout.lines().map(str::to_string).collect()
    };
    for backend in [&[][..], &["--state", STATE][..]] {
        let import: Vec<&str> = [&["import", "s3_bucket.adopted", "made-by-hand"][..], backend].concat();
        let rm: Vec<&str> = [&["state", "rm", "s3_bucket.adopted"][..], backend].concat();
        for (args, undo, after) in [(&import, &rm, true), (&rm, &import, false)] {
            env.proxy().set_mode(Mode::Pass);
            env.run(args).expect_code(0);
            let reference: Vec<String> =
                env.proxy().seen().iter().map(|s| format!("{} {}", s.service, s.operation)).collect();
            let mut killed = 0;
            for k in 1..=reference.len() {
                let what = format!("{args:?} killed after request {k} ({})", reference[k - 1]);
                env.run(undo).expect_code(0);
                killed += usize::from(crate::hostile::run_killed_after(&env, args, k));
                let again = env.run(args);
                // `state rm` of what a killed run removed already is refused, naming it: the
                // state is what the command meant either way.
                let refused_as_done = !after && again.stderr.contains("is not in the state");
                assert!(again.code == 0 || refused_as_done, "{what}, run again:\n{}\n{}", again.stdout, again.stderr);
                let listed = imported(&env, backend);
                let has = listed.iter().any(|l| l.starts_with("s3_bucket.adopted\tmade-by-hand"));
                assert_eq!(has, after, "{what}: the state lists {listed:?}");
                let buckets = env.block_on(env.s3().list_buckets().send()).expect("buckets");
                assert!(buckets.buckets().iter().any(|b| b.name() == Some("made-by-hand")), "{what}: untouched");
            }
            eprintln!("{args:?}: {} requests: {reference:?}", reference.len());
            assert_eq!(killed, reference.len(), "{args:?}: every run was killed");
        }
    }
}

#[test]
fn a_dead_holders_s3_lock_is_taken_over_even_when_the_answer_of_the_takeover_is_lost() {
    // The lock of a command that died on this host is replaced (If-Match its ETag); S3 does it
    // and the answer never arrives: the retry is refused (the ETag moved), and the lock that is
    // there now, ours, says the takeover happened.
    use crate::proxy::Mode;
    let env = Env::with_proxy(Mode::Pass, 0);
    many_buckets(&env, 1);
    // A holder on this host, in this boot, whose process has ended (and been reaped).
    let mut gone = std::process::Command::new("true").spawn().expect("a process");
    gone.wait().expect("reaped");
    let mut holder = cruddur_infra::state::LockInfo::new("apply");
    holder.pid = gone.id();
    holder.process_start = None;
    let body = serde_json::to_vec(&holder).expect("json");
    let put = env.s3().put_object().bucket("team-state").key("cruddur/state.json.lock").body(body.into());
    env.block_on(put.send()).expect("the dead holder's lock");
    env.proxy().set_mode(Mode::LoseAnswerOfNth {
        label: "s3 PUT /team-state/cruddur/state.json.lock?x-id=PutObject".into(),
        nth: 2,
    });
    let applied = env.run(&["apply", "--auto-approve", "--state", STATE]);
    let seen = env.proxy().seen();
    env.proxy().set_mode(Mode::Pass);
    assert!(seen.iter().any(|s| s.fate == crate::proxy::Fate::AnswerLost), "the takeover's answer was lost: {seen:?}");
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(applied.stderr.contains("Took over the state lock of"), "{}", applied.stderr);
    assert!(!object_exists(&env, "cruddur/state.json.lock"), "released at the end");
    assert_eq!(managed_buckets(&env), vec!["bucket-0"]);
}

/// Puts a lock object as a command on another host would have left it.
fn foreign_lock(env: &Env, id: &str, operation: &str, lease: Option<u64>) {
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let mut lock =
        serde_json::json!({"id": id, "pid": 4242, "host": "ci-runner-7", "operation": operation, "created": created});
    if let Some(lease) = lease {
        lock["lease"] = lease.into();
    }
    let put = env
        .s3()
        .put_object()
        .bucket("team-state")
        .key("cruddur/state.json.lock")
        .body(serde_json::to_vec(&lock).expect("json").into());
    env.block_on(put.send()).expect("a lock from another host");
}

fn lock_object(env: &Env) -> Option<serde_json::Value> {
    let out = env.block_on(env.s3().get_object().bucket("team-state").key("cruddur/state.json.lock").send()).ok()?;
    let bytes = env.block_on(out.body.collect()).expect("body").into_bytes();
    serde_json::from_slice(&bytes).ok()
}

#[test]
fn a_lock_left_on_another_host_is_taken_over_once_its_lease_lapsed() {
    // A CI job killed on one runner leaves its lock; the retry on another runner cannot see
    // whether that process lives, so it waits out the lease (the holder would have renewed it)
    // and then takes the lock over, naming the old holder. Before that it says when.
    let env = Env::new();
    many_buckets(&env, 2);
    foreign_lock(&env, "gone-runner", "state encrypt", Some(3));
    let refused = env.run(&["apply", "--auto-approve", "--state", STATE]).expect_code(1);
    let message = refused.stderr_flat();
    assert!(message.contains("state encrypt by pid 4242 on ci-runner-7"), "{message}");
    assert!(message.contains("the lock is free in"), "{message}");
    let applied = env.run(&["apply", "--auto-approve", "--lock-timeout", "1m", "--state", STATE]).expect_code(0);
    let message = applied.stderr_flat();
    assert!(
        message.contains("Took over the state lock of state encrypt by pid 4242 on ci-runner-7")
            && message.contains("its holder stopped renewing it (lease 3s"),
        "{message}"
    );
    assert_eq!(applied.stderr.matches("Waiting for the state lock").count(), 1, "said once per holder: {message}");
    assert_eq!(managed_buckets(&env), vec!["bucket-0", "bucket-1"]);
    assert!(lock_object(&env).is_none(), "released");

    // A lock from an engine without leases lasts until released or force-unlocked, however old.
    foreign_lock(&env, "old-engine", "apply", None);
    std::thread::sleep(Duration::from_secs(4));
    let refused = env.run(&["apply", "--auto-approve", "--lock-timeout", "2s", "--state", STATE]).expect_code(1);
    assert!(refused.stderr_flat().contains("cruddur-infra force-unlock old-engine"), "{}", refused.stderr);
}

#[test]
fn a_live_holder_renews_its_lease_and_one_whose_lock_was_taken_over_stops_before_its_next_write() {
    // An apply slowed by latency holds a 4 s lease for many leases: it renews it (each renewal
    // a new version), so another command is refused all along. Then another host takes the
    // lock (as it would after a lapse): the apply stops at its next renewal, and what it did is
    // found by the next run, which converges.
    use crate::proxy::Mode;
    let env = Env::with_proxy(Mode::Faults { transient: 0.0, lost: 0.0, latency: Duration::from_millis(40) }, 1);
    many_buckets(&env, 40);
    let mut holder = env
        .command(&["apply", "--auto-approve", "--parallelism", "1", "--lock-lease", "4s", "--state", STATE])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("apply");
    wait_for(&env, "cruddur/state.json.lock");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(9) {
        let refused = env.run(&["apply", "--auto-approve", "--state", STATE]).expect_code(1);
        assert!(refused.stderr_flat().contains(&format!("apply by pid {}", holder.id())), "{}", refused.stderr);
        assert!(holder.try_wait().expect("wait").is_none(), "the apply finished too early to prove anything");
        std::thread::sleep(Duration::from_millis(500));
    }
    let renewed = lock_object(&env).expect("held")["renewed"].as_u64().unwrap_or(0);
    assert!(renewed >= 4, "renewed every second: {renewed}");

    foreign_lock(&env, "other-runner", "apply", Some(60));
    let taken_at = Instant::now();
    let out = holder.wait_with_output().expect("ends");
    let stderr =
        String::from_utf8_lossy(&out.stderr).split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(taken_at.elapsed() < Duration::from_secs(5), "stopped at its next renewal");
    assert!(
        stderr.contains("lost its lock while it worked: it was taken over by apply by pid 4242 on ci-runner-7"),
        "{stderr}"
    );
    assert!(managed_buckets(&env).len() < 40, "stopped before the end");
    assert_eq!(lock_object(&env).expect("the new holder's")["id"], "other-runner", "the new holder's lock is kept");

    env.proxy().set_mode(Mode::Pass);
    env.run(&["force-unlock", "other-runner", "--state", STATE]).expect_code(0);
    env.run(&["apply", "--auto-approve", "--state", STATE]).expect_code(0);
    assert_eq!(managed_buckets(&env).len(), 40);
    assert_eq!(remote_state(&env)["resources"].as_object().expect("resources").len(), 40);
    env.run(&["plan", "--detailed-exitcode", "--state", STATE]).expect_code(0);
}

#[test]
fn a_renewal_whose_answer_is_lost_keeps_the_lock() {
    // The renewal landed and its answer was lost: the retry is refused (the version moved),
    // and the lock that is there, this renewal, says it is still ours.
    use crate::proxy::Mode;
    let env = Env::with_proxy(Mode::Pass, 0);
    many_buckets(&env, 30);
    env.proxy().set_mode(Mode::LoseAnswerOfNth {
        label: "s3 PUT /team-state/cruddur/state.json.lock?x-id=PutObject".into(),
        nth: 2,
    });
    let applied = env.run(&["apply", "--auto-approve", "--parallelism", "1", "--lock-lease", "1s", "--state", STATE]);
    let seen = env.proxy().seen();
    env.proxy().set_mode(Mode::Pass);
    assert!(seen.iter().any(|s| s.fate == crate::proxy::Fate::AnswerLost), "a renewal's answer was lost: {seen:?}");
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert_eq!(managed_buckets(&env).len(), 30);
    assert!(lock_object(&env).is_none(), "released");
}

#[test]
fn renewals_under_transient_failures_and_lost_answers_keep_the_lock_to_the_end() {
    // A 4 s lease renewed every second while 20% of requests fail and 5% lose their answer:
    // retried renewals, renewals whose answer was lost and a failed read after one never make
    // the holder give up while its lease holds; the apply converges on the first try.
    use crate::proxy::{Fate, Mode};
    let env = Env::with_proxy(Mode::Pass, 3);
    many_buckets(&env, 15);
    env.proxy().set_mode(Mode::Faults { transient: 0.2, lost: 0.05, latency: Duration::from_millis(30) });
    let applied = env.run(&["apply", "--auto-approve", "--parallelism", "1", "--lock-lease", "4s", "--state", STATE]);
    let seen = env.proxy().seen();
    env.proxy().set_mode(Mode::Pass);
    let renewals: Vec<&crate::proxy::Seen> =
        seen.iter().filter(|s| s.label() == "s3 PUT /team-state/cruddur/state.json.lock?x-id=PutObject").collect();
    assert!(renewals.len() >= 4, "the lock was renewed: {} writes of it", renewals.len());
    assert!(renewals.iter().any(|s| s.fate != Fate::Forwarded), "a renewal met a fault: {renewals:?}");
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert_eq!(managed_buckets(&env).len(), 15);
    assert!(lock_object(&env).is_none(), "released");
    env.run(&["plan", "--detailed-exitcode", "--state", STATE]).expect_code(0);
}
