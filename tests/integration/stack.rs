//! The real specs/cruddur.yaml applied to an empty account (with the prerequisites the stack
//! expects to exist), checked resource by resource through the AWS API; then drift, spec
//! edits, the ordering of AWS calls, and destroy.

use std::collections::BTreeMap;

use aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType;
use serde_json::Value;

use crate::harness::{Env, code_sha256};

const DOMAIN: &str = "cruddur.test";
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CERT: &str = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555";

/// What the stack expects to exist, created as the original did by hand.
pub(crate) struct Prerequisites {
    pub zone_id: String,
    pub pool_id: String,
    pub client_id: String,
}

/// The repository's spec, the .env that feeds it, the zips and the prerequisites.
pub(crate) fn stack(env: &Env) -> Prerequisites {
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/cruddur.yaml")).expect("the real spec");
    env.write_spec(&spec);
    let zone =
        env.block_on(env.route53().create_hosted_zone().name(DOMAIN).caller_reference("test").send()).expect("zone");
    let zone_id = zone.hosted_zone().expect("zone").id().trim_start_matches("/hostedzone/").to_string();
    let cognito = env.cognito();
    let pool = env.block_on(cognito.create_user_pool().pool_name("cruddur").send()).expect("pool");
    let pool_id = pool.user_pool().and_then(|p| p.id()).expect("pool id").to_string();
    let client = env
        .block_on(
            cognito
                .create_user_pool_client()
                .user_pool_id(&pool_id)
                .client_name("web")
                .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
                .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
                .send(),
        )
        .expect("client");
    let client_id = client.user_pool_client().and_then(|c| c.client_id()).expect("client id").to_string();
    env.block_on(env.s3().create_bucket().bucket("assets.cruddur.test").send()).expect("assets bucket made by hand");
    env.write(
        ".env",
        &format!(
            "UPLOADS_BUCKET_NAME=cruddur-uploads-test\nASSETS_BUCKET_NAME=assets.cruddur.test\nDOMAIN_NAME={DOMAIN}\n\
             ASSETS_CERTIFICATE_ARN={CERT}\nCOGNITO_USER_POOL_ID={pool_id}\nCOGNITO_USER_POOL_CLIENT_ID={client_id}\n\
             FRONTEND_ORIGIN=https://app.cruddur.test\nTHUMBING_WEBHOOK_URL=https://hooks.cruddur.test/avatar\n\
             THUMBNAILER_SOURCE={ROOT}/lambdas/thumbnailer\nAUTHORIZER_SOURCE={ROOT}/lambdas/authorizer\nPRESIGNER_SOURCE={ROOT}/lambdas/presigner\n"
        ),
    );
    Prerequisites { zone_id, pool_id, client_id }
}

pub(crate) fn state_id(env: &Env, addr: &str) -> String {
    env.state()["resources"][addr]["id"].as_str().unwrap_or_else(|| panic!("{addr} in state")).to_string()
}

/// Every request the binary made, in order, from the call log.
fn calls(env: &Env, log: &str) -> Vec<String> {
    std::fs::read_to_string(env.path(log)).expect("call log").lines().map(str::to_string).collect()
}

fn position(calls: &[String], what: &str) -> usize {
    calls
        .iter()
        .position(|c| c.contains(what))
        .unwrap_or_else(|| panic!("no call matching `{what}` in\n{}", calls.join("\n")))
}

#[test]
fn whole_stack_applies_with_every_link_in_place_and_destroy_leaves_nothing() {
    // Apply the real spec to an empty account; check each resource and link through the API;
    // plan again (empty); destroy and find nothing left in any service.
    let env = Env::new();
    let pre = stack(&env);
    let apply = env
        .command(&["apply", "--auto-approve"])
        .env("CRUDDUR_AWS_CALL_LOG", env.path("apply.log"))
        .output()
        .expect("runs");
    assert!(
        apply.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&apply.stdout),
        String::from_utf8_lossy(&apply.stderr)
    );

    let (s3, sns, iam, lambda) = (env.s3(), env.sns(), env.iam(), env.lambda());
    // Buckets: CORS on uploads, the adopted assets bucket readable only by this distribution.
    let cors = env.block_on(s3.get_bucket_cors().bucket("cruddur-uploads-test").send()).expect("cors");
    assert_eq!(cors.cors_rules()[0].allowed_origins(), ["https://app.cruddur.test"]);
    assert_eq!(cors.cors_rules()[0].allowed_methods(), ["PUT"]);
    let dist_id = state_id(&env, "cloudfront_distribution.assets");
    let dist = env.block_on(env.cloudfront().get_distribution().id(&dist_id).send()).expect("distribution");
    let dist = dist.distribution().expect("distribution");
    let policy = env.block_on(s3.get_bucket_policy().bucket("assets.cruddur.test").send()).expect("bucket policy");
    let policy: Value = serde_json::from_str(policy.policy().expect("policy")).expect("json");
    assert_eq!(policy["Statement"][0]["Condition"]["StringEquals"]["AWS:SourceArn"], serde_json::json!([dist.arn()]));
    assert_eq!(policy["Statement"][0]["Principal"]["Service"], serde_json::json!(["cloudfront.amazonaws.com"]));

    // Functions: three, with their roles, environment and code.
    let thumb = env.block_on(lambda.get_function().function_name("cruddur-thumbnailer").send()).expect("thumbnailer");
    let thumb = thumb.configuration().expect("config");
    let env_vars = thumb.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert_eq!(
        env_vars,
        BTreeMap::from([
            ("DEST_BUCKET_NAME".into(), "assets.cruddur.test".into()),
            ("FOLDER_OUTPUT".into(), "avatars/processed/".into()),
            ("PROCESS_WIDTH".into(), "512".into()),
            ("PROCESS_HEIGHT".into(), "512".into()),
        ])
        .into_iter()
        .collect()
    );
    assert!(thumb.role().unwrap_or_default().ends_with(":role/cruddur-thumbnailer"));
    assert_eq!(thumb.runtime().map(|r| r.as_str()), Some("provided.al2023"));
    let zip = std::fs::read(crate::harness::packaged_zip("thumbnailer", "x86_64")).expect("the packaged zip");
    assert_eq!(thumb.code_sha256(), Some(code_sha256(&zip).as_str()));
    let auth = env.block_on(lambda.get_function().function_name("cruddur-authorizer").send()).expect("authorizer");
    let auth_vars =
        auth.configuration().and_then(|c| c.environment()).and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert_eq!(auth_vars.get("USER_POOL_ID"), Some(&pre.pool_id));
    assert_eq!(auth_vars.get("CLIENT_ID"), Some(&pre.client_id));
    let auth_arn = auth.configuration().and_then(|c| c.function_arn()).expect("arn").to_string();
    let presigner = env.block_on(lambda.get_function().function_name("cruddur-presigner").send()).expect("presigner");
    let presigner_arn = presigner.configuration().and_then(|c| c.function_arn()).expect("arn").to_string();

    // Roles: least privilege inline policies.
    let inline = env
        .block_on(iam.get_role_policy().role_name("cruddur-presigner").policy_name("presigning").send())
        .expect("inline");
    let doc = percent_decode(inline.policy_document());
    assert!(doc.contains("s3:PutObject") && doc.contains("arn:aws:s3:::cruddur-uploads-test/*"), "{doc}");
    let attached =
        env.block_on(iam.list_attached_role_policies().role_name("cruddur-authorizer").send()).expect("attached");
    assert_eq!(attached.attached_policies().len(), 1);
    let auth_inline = env.block_on(iam.list_role_policies().role_name("cruddur-authorizer").send()).expect("list");
    assert!(auth_inline.policy_names().is_empty(), "the authorizer may only write logs");

    // Notifications: uploads -> thumbnailer, assets/avatars/processed/ -> topic.
    let uploads_n =
        env.block_on(s3.get_bucket_notification_configuration().bucket("cruddur-uploads-test").send()).expect("n");
    // Every invoker calls the live alias, which serves the first published version.
    let thumb_arn = thumb.function_arn().expect("arn");
    assert_eq!(uploads_n.lambda_function_configurations()[0].lambda_function_arn(), format!("{thumb_arn}:live"));
    for name in ["cruddur-thumbnailer", "cruddur-authorizer", "cruddur-presigner"] {
        let alias = env.block_on(lambda.get_alias().function_name(name).name("live").send()).expect("live alias");
        assert_eq!(alias.function_version(), Some("1"), "{name}");
        let live = env.block_on(lambda.get_function().function_name(name).qualifier("live").send()).expect("live");
        let deployed = env.block_on(lambda.get_function().function_name(name).send()).expect("function");
        let sha = |f: &aws_sdk_lambda::operation::get_function::GetFunctionOutput| {
            f.configuration().and_then(|c| c.code_sha256()).map(str::to_string)
        };
        assert_eq!(sha(&live), sha(&deployed), "{name}: live serves the uploaded code");
        let policy =
            env.block_on(lambda.get_policy().function_name(name).qualifier("live").send()).expect("the alias's policy");
        assert!(policy.policy().unwrap_or_default().contains("lambda:InvokeFunction"), "{name}");
    }
    let topic_arn = state_id(&env, "sns_topic.assets");
    let assets_n =
        env.block_on(s3.get_bucket_notification_configuration().bucket("assets.cruddur.test").send()).expect("n");
    let topic_conf = &assets_n.topic_configurations()[0];
    assert_eq!(topic_conf.topic_arn(), topic_arn);
    let rule = &topic_conf.filter().and_then(|f| f.key()).expect("filter").filter_rules()[0];
    assert_eq!(rule.value(), Some("avatars/processed/"));

    // Topic policy lets the assets bucket publish; the webhook is subscribed.
    let attrs = env
        .block_on(sns.get_topic_attributes().topic_arn(&topic_arn).send())
        .expect("topic")
        .attributes
        .unwrap_or_default();
    assert!(attrs["Policy"].contains("arn:aws:s3:::assets.cruddur.test"), "{}", attrs["Policy"]);
    let subs = env.block_on(sns.list_subscriptions_by_topic().topic_arn(&topic_arn).send()).expect("subs");
    assert_eq!(subs.subscriptions()[0].endpoint(), Some("https://hooks.cruddur.test/avatar"));

    // Permissions name their sources.
    let perm = env.block_on(lambda.get_policy().function_name("cruddur-thumbnailer").send()).expect("policy");
    assert!(perm.policy().unwrap_or_default().contains("arn:aws:s3:::cruddur-uploads-test"), "{:?}", perm.policy());
    let api_id = state_id(&env, "apigatewayv2_api.avatars");
    let perm = env.block_on(lambda.get_policy().function_name("cruddur-presigner").send()).expect("policy");
    assert!(
        perm.policy().unwrap_or_default().contains(&format!(":{api_id}/*/*/avatars/key_upload")),
        "{:?}",
        perm.policy()
    );

    // CloudFront: aliases, certificate, through the OAC; Route53 aliases point at it.
    let config = dist.distribution_config().expect("config");
    assert_eq!(config.aliases().map(|a| a.items().to_vec()), Some(vec![format!("assets.{DOMAIN}")]));
    assert_eq!(config.viewer_certificate().and_then(|v| v.acm_certificate_arn()), Some(CERT));
    assert_eq!(config.is_ipv6_enabled(), Some(true), "the AAAA alias needs IPv6 served");
    let oac = env.block_on(
        env.cloudfront()
            .get_origin_access_control()
            .id(state_id(&env, "cloudfront_origin_access_control.assets"))
            .send(),
    );
    assert!(oac.is_ok());
    let records =
        env.block_on(env.route53().list_resource_record_sets().hosted_zone_id(&pre.zone_id).send()).expect("records");
    for rtype in ["A", "AAAA"] {
        let r = records
            .resource_record_sets()
            .iter()
            .find(|r| r.name() == format!("assets.{DOMAIN}.") && r.r#type().as_str() == rtype);
        let target = r.and_then(|r| r.alias_target()).unwrap_or_else(|| panic!("{rtype} alias"));
        assert_eq!(target.dns_name().trim_end_matches('.'), dist.domain_name());
    }

    // API: CORS, route -> authorizer + integration -> functions, $default auto-deploys.
    let apigw = env.apigw();
    let api = env.block_on(apigw.get_api().api_id(&api_id).send()).expect("api");
    assert_eq!(
        api.cors_configuration().map(|c| c.allow_origins().to_vec()),
        Some(vec!["https://app.cruddur.test".to_string()])
    );
    let route_id = state_id(&env, "apigatewayv2_route.key_upload").split('/').nth(1).expect("route id").to_string();
    let route = env.block_on(apigw.get_route().api_id(&api_id).route_id(&route_id).send()).expect("route");
    assert_eq!(route.route_key(), Some("POST /avatars/key_upload"));
    assert_eq!(route.authorization_type().map(|t| t.as_str()), Some("CUSTOM"));
    let authorizer = env
        .block_on(
            apigw.get_authorizer().api_id(&api_id).authorizer_id(route.authorizer_id().expect("authorizer id")).send(),
        )
        .expect("authorizer");
    assert!(authorizer.authorizer_uri().unwrap_or_default().contains(&format!("{auth_arn}:live/invocations")));
    assert_eq!(authorizer.identity_source(), ["$request.header.Authorization"]);
    assert_eq!(authorizer.enable_simple_responses(), Some(true));
    assert_eq!(authorizer.authorizer_payload_format_version(), Some("2.0"));
    let integration_id = route.target().and_then(|t| t.strip_prefix("integrations/")).expect("target").to_string();
    let integration = env
        .block_on(apigw.get_integration().api_id(&api_id).integration_id(integration_id).send())
        .expect("integration");
    assert!(integration.integration_uri().unwrap_or_default().contains(&format!("{presigner_arn}:live/invocations")));
    let stage = env.block_on(apigw.get_stage().api_id(&api_id).stage_name("$default").send()).expect("stage");
    assert_eq!(stage.auto_deploy(), Some(true));

    // AWS's ordering rules, from the requests actually sent.
    let log = calls(&env, "apply.log");
    assert!(
        position(&log, "AddPermission POST /2015-03-31/functions/cruddur-thumbnailer/policy")
            < position(&log, "PutBucketNotificationConfiguration PUT /cruddur-uploads-test"),
        "the permission for S3 comes before the notification that needs it"
    );
    assert!(
        position(&log, "SetTopicAttributes")
            < position(&log, "PutBucketNotificationConfiguration PUT /assets.cruddur.test"),
        "the topic policy comes before the notification that needs it"
    );

    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);

    let destroy = env
        .command(&["destroy", "--auto-approve"])
        .env("CRUDDUR_AWS_CALL_LOG", env.path("destroy.log"))
        .output()
        .expect("runs");
    assert!(destroy.status.success(), "{}", String::from_utf8_lossy(&destroy.stderr));
    assert!(
        String::from_utf8_lossy(&destroy.stdout)
            .contains("s3_bucket.assets will no longer be managed: it is kept in AWS")
    );
    let log = calls(&env, "destroy.log");
    let disable =
        position(&log, &format!("UpdateDistribution PUT /2020-05-31/distribution/{dist_id}/config if-match="));
    let delete = position(&log, &format!("DeleteDistribution DELETE /2020-05-31/distribution/{dist_id} if-match="));
    assert!(disable < delete, "the distribution is disabled before it is deleted");

    // The assets bucket existed before the stack (it is adopted with import_id): kept, forgotten.
    let listed = env.block_on(s3.list_buckets().send()).expect("buckets");
    let left: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(left, ["assets.cruddur.test"]);
    assert!(env.block_on(sns.list_topics().send()).expect("topics").topics().is_empty());
    assert!(env.block_on(lambda.list_functions().send()).expect("functions").functions().is_empty());
    let roles = env.block_on(iam.list_roles().send()).expect("roles");
    assert!(!roles.roles().iter().any(|r| r.role_name().starts_with("cruddur-")));
    assert!(env.block_on(apigw.get_apis().send()).expect("apis").items().is_empty());
    let dists = env.block_on(env.cloudfront().list_distributions().send()).expect("distributions");
    assert!(dists.distribution_list().map(|l| l.items().is_empty()).unwrap_or(true));
    let oacs = env.block_on(env.cloudfront().list_origin_access_controls().send()).expect("oacs");
    assert!(oacs.origin_access_control_list().map(|l| l.items().is_empty()).unwrap_or(true));
    let records =
        env.block_on(env.route53().list_resource_record_sets().hosted_zone_id(&pre.zone_id).send()).expect("records");
    assert!(records.resource_record_sets().iter().all(|r| matches!(r.r#type().as_str(), "NS" | "SOA")));
    assert_eq!(env.state()["resources"], serde_json::json!({}));
}

#[test]
fn drift_in_every_service_is_planned_and_repaired_and_spec_edits_update_in_place() {
    // Changes made behind the engine's back in each service show in the plan and apply puts
    // them back; then a spec edit and new code are planned as in-place updates.
    let env = Env::new();
    let pre = stack(&env);
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let (s3, lambda, iam, apigw) = (env.s3(), env.lambda(), env.iam(), env.apigw());
    let api_id = state_id(&env, "apigatewayv2_api.avatars");
    let authorizer_id = state_id(&env, "apigatewayv2_authorizer.cognito").split('/').nth(1).expect("id").to_string();

    // A function edited in the console goes live only once published and aliased.
    env.block_on(lambda.update_function_configuration().function_name("cruddur-thumbnailer").memory_size(256).send())
        .expect("drift");
    let edited = env.block_on(lambda.publish_version().function_name("cruddur-thumbnailer").send()).expect("publish");
    let edited = edited.version().expect("version").to_string();
    env.block_on(
        lambda.update_alias().function_name("cruddur-thumbnailer").name("live").function_version(&edited).send(),
    )
    .expect("drift");
    env.block_on(iam.delete_role_policy().role_name("cruddur-presigner").policy_name("presigning").send())
        .expect("drift");
    env.block_on(s3.delete_bucket_policy().bucket("assets.cruddur.test").send()).expect("drift");
    env.block_on(
        apigw
            .update_authorizer()
            .api_id(&api_id)
            .authorizer_id(&authorizer_id)
            .authorizer_result_ttl_in_seconds(0)
            .send(),
    )
    .expect("drift");
    // (An emptied configuration would be drift too, but moto answers an empty one with XML the
    // SDK rightly refuses; real S3 does not.)
    let thumb_arn =
        env.state()["resources"]["lambda_function.thumbnailer"]["attributes"]["arn"].as_str().expect("arn").to_string();
    let removed_only = aws_sdk_s3::types::NotificationConfiguration::builder()
        .lambda_function_configurations(
            aws_sdk_s3::types::LambdaFunctionConfiguration::builder()
                .lambda_function_arn(thumb_arn)
                .events(aws_sdk_s3::types::Event::from("s3:ObjectRemoved:*"))
                .build()
                .expect("config"),
        )
        .build();
    let put = s3
        .put_bucket_notification_configuration()
        .bucket("cruddur-uploads-test")
        .notification_configuration(removed_only);
    env.block_on(put.send()).expect("drift");
    let change = aws_sdk_route53::types::Change::builder()
        .action(aws_sdk_route53::types::ChangeAction::Delete)
        .resource_record_set(
            env.block_on(env.route53().list_resource_record_sets().hosted_zone_id(&pre.zone_id).send())
                .expect("records")
                .resource_record_sets()
                .iter()
                .find(|r| r.r#type().as_str() == "AAAA")
                .expect("AAAA")
                .clone(),
        )
        .build()
        .expect("change");
    let batch = aws_sdk_route53::types::ChangeBatch::builder().changes(change).build().expect("batch");
    env.block_on(env.route53().change_resource_record_sets().hosted_zone_id(&pre.zone_id).change_batch(batch).send())
        .expect("drift");

    // CloudFront: a comment edited in the console (a get-modify-update round trip, with If-Match).
    let cloudfront = env.cloudfront();
    let dist_id = state_id(&env, "cloudfront_distribution.assets");
    let current = env.block_on(cloudfront.get_distribution_config().id(&dist_id).send()).expect("config");
    let mut config = current.distribution_config().expect("config").clone();
    config.comment = "edited by hand".into();
    let update = cloudfront
        .update_distribution()
        .id(&dist_id)
        .if_match(current.e_tag().unwrap_or_default())
        .distribution_config(config);
    env.block_on(update.send()).expect("drift");
    let oac_id = state_id(&env, "cloudfront_origin_access_control.assets");
    let oac = env.block_on(cloudfront.get_origin_access_control().id(&oac_id).send()).expect("oac");
    let mut oac_config =
        oac.origin_access_control().and_then(|o| o.origin_access_control_config()).expect("config").clone();
    oac_config.description = Some("edited by hand".into());
    let update = cloudfront
        .update_origin_access_control()
        .id(&oac_id)
        .if_match(oac.e_tag().unwrap_or_default())
        .origin_access_control_config(oac_config);
    env.block_on(update.send()).expect("drift");
    // API Gateway: the route opened up, the integration's payload format changed.
    let route_id = state_id(&env, "apigatewayv2_route.key_upload").split('/').nth(1).expect("id").to_string();
    let open_route = apigw
        .update_route()
        .api_id(&api_id)
        .route_id(&route_id)
        .authorization_type(aws_sdk_apigatewayv2::types::AuthorizationType::None);
    env.block_on(open_route.send()).expect("drift");
    let integration_id =
        state_id(&env, "apigatewayv2_integration.presigner").split('/').nth(1).expect("id").to_string();
    env.block_on(
        apigw.update_integration().api_id(&api_id).integration_id(&integration_id).payload_format_version("1.0").send(),
    )
    .expect("drift");
    // SNS: the topic policy reset to one without the S3 statement.
    let topic_arn = state_id(&env, "sns_topic.assets");
    let bare = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"*"}},"Action":"SNS:Subscribe","Resource":"{topic_arn}"}}]}}"#
    );
    env.block_on(
        env.sns().set_topic_attributes().topic_arn(&topic_arn).attribute_name("Policy").attribute_value(bare).send(),
    )
    .expect("drift");

    let plan = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    for line in [
        "# cloudfront_distribution.assets will be updated in-place",
        r#"~ comment = "edited by hand" -> "Cruddur avatars""#,
        "# cloudfront_origin_access_control.assets will be updated in-place",
        "# apigatewayv2_route.key_upload will be updated in-place",
        "# apigatewayv2_integration.presigner will be updated in-place",
        r#"~ payload_format_version = "1.0" -> "2.0""#,
        "# sns_topic_policy.assets will be updated in-place",
        "# lambda_function.thumbnailer will be updated in-place",
        "~ memory_size = 256 -> 1024",
        "# iam_role.presigner will be updated in-place",
        "# s3_bucket_policy.assets will be created (it was deleted outside cruddur-infra)",
        "# apigatewayv2_authorizer.cognito will be updated in-place",
        "~ result_ttl_seconds = 0 -> 300",
        "# s3_bucket_notification.uploads will be updated in-place",
        "# route53_record.assets_ipv6 will be created (it was deleted outside cruddur-infra)",
        "Plan: 2 to add, 9 to change, 0 to destroy.",
    ] {
        assert!(plan.stdout.contains(line), "missing `{line}` in\n{}", plan.stdout);
    }
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
    let f = env.block_on(lambda.get_function().function_name("cruddur-thumbnailer").send()).expect("function");
    assert_eq!(f.configuration().and_then(|c| c.memory_size()), Some(1024));
    let live = env
        .block_on(lambda.get_function().function_name("cruddur-thumbnailer").qualifier("live").send())
        .expect("live");
    let live = live.configuration().expect("configuration");
    assert_eq!(live.memory_size(), Some(1024), "the repaired settings are published and live");
    assert_ne!(live.version(), Some(edited.as_str()), "live no longer serves the version edited by hand");
    env.block_on(iam.get_role_policy().role_name("cruddur-presigner").policy_name("presigning").send())
        .expect("policy is back");

    // A spec edit: the frontend moved.
    let dotenv = std::fs::read_to_string(env.path(".env"))
        .expect(".env")
        .replace("https://app.cruddur.test", "https://www.cruddur.test");
    env.write(".env", &dotenv);
    let plan = env.run(&["plan", "--detailed-exitcode"]).expect_code(2);
    for line in [
        "# s3_bucket.uploads will be updated in-place",
        "# apigatewayv2_api.avatars will be updated in-place",
        "Plan: 0 to add, 2 to change, 0 to destroy.",
    ] {
        assert!(plan.stdout.contains(line), "missing `{line}` in\n{}", plan.stdout);
    }
    env.run(&["apply", "--auto-approve"]).expect_code(0);
    let api = env.block_on(apigw.get_api().api_id(&api_id).send()).expect("api");
    assert_eq!(
        api.cors_configuration().map(|c| c.allow_origins().to_vec()),
        Some(vec!["https://www.cruddur.test".to_string()])
    );
    env.run(&["plan", "--detailed-exitcode"]).expect_code(0);
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}
