//! Stages: separate copies of the stack (a preview for each pull request) beside the main one,
//! each with its own state and its own AWS names.
//!
//! `--stage NAME` (or `CRUDDUR_STAGE`) picks one. The spec says what differs per stage with
//! `${stage}`: empty for the main stack, `-NAME` in stage NAME, so `cruddur${stage}-presigner`
//! is `cruddur-presigner` in the main stack and `cruddur-pr-17-presigner` in `pr-17`, and the
//! main stack's names (and its plan) do not change when stages are added. A stage's state sits
//! beside the main one: `state/cruddur.json` -> `state/cruddur.pr-17.json`, the same for an S3
//! key. What exists once per account is shared through lookups (a hosted zone, a user pool);
//! `import_id` adopts in the main stack only: in a stage the resource is its own.

/// The longest stage name: every kind's limits are checked with the stage applied, this only
/// keeps names readable.
pub const MAX_LEN: usize = 32;

/// A `--stage` value: lowercase letters, digits and hyphens (what every kind's names accept,
/// S3 buckets and DNS labels included), beginning with a letter, not ending with a hyphen.
pub fn parse_name(text: &str) -> Result<String, String> {
    let fail = |why: &str| Err(format!("`{text}` is not a stage name: {why}"));
    if text.is_empty() {
        return fail("it is empty (leave --stage out for the main stack)");
    }
    if text.len() > MAX_LEN {
        return fail(&format!("it is {} characters long; at most {MAX_LEN}", text.len()));
    }
    if let Some(c) = text.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return fail(&format!(
            "`{c}` is not allowed: lowercase letters, digits and hyphens only (bucket names and DNS labels take no \
             more)"
        ));
    }
    if !text.starts_with(|c: char| c.is_ascii_lowercase()) {
        return fail("it must begin with a lowercase letter");
    }
    if text.ends_with('-') || text.contains("--") {
        return fail("it may not end with a hyphen or hold two together");
    }
    Ok(text.to_string())
}

/// What `${stage}` is: empty for the main stack, `-NAME` in stage NAME.
pub fn value(stage: Option<&str>) -> String {
    stage.map(|s| format!("-{s}")).unwrap_or_default()
}

/// Where stage `stage` keeps its state, beside the main stack's at `location`: the stage name
/// goes before the file's extension (`s.json` -> `s.pr-17.json`; `state` -> `state.pr-17`),
/// for a path and an S3 key alike.
pub fn state_location(location: &str, stage: &str) -> String {
    let file_start = location.rfind('/').map_or(0, |i| i + 1);
    match location[file_start..].rfind('.').filter(|dot| *dot > 0) {
        Some(dot) => {
            let at = file_start + dot;
            format!("{}.{stage}{}", &location[..at], &location[at..])
        }
        None => format!("{location}.{stage}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_keeps_its_state_beside_the_main_one_and_its_names_take_a_suffix() {
        assert_eq!(state_location("state/cruddur.json", "pr-17"), "state/cruddur.pr-17.json");
        assert_eq!(state_location("s3://team/envs/prod.json", "pr-17"), "s3://team/envs/prod.pr-17.json");
        assert_eq!(state_location("state", "pr-17"), "state.pr-17");
        assert_eq!(state_location("dir.d/.state", "x"), "dir.d/.state.x");
        assert_eq!(value(None), "");
        assert_eq!(value(Some("pr-17")), "-pr-17");
    }

    #[test]
    fn only_names_every_kind_accepts_are_stage_names() {
        assert_eq!(parse_name("pr-17"), Ok("pr-17".into()));
        for bad in ["", "PR-17", "pr_17", "17", "pr-", "pr--17", "pr.17", &"a".repeat(33)] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
        assert!(parse_name("PR").expect_err("upper").contains("lowercase"));
    }
}
