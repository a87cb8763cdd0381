//! AWS's strict behaviours, played by the test proxy in front of moto (which is lenient where
//! AWS is not). Each rule answers as AWS does, from what passed through the proxy and what moto
//! holds; none relaxes a check. The clocks say how long AWS takes where it is eventually
//! consistent or deploys in the background.
//!
//! - SNS: an http(s) subscription stays pending confirmation; `Unsubscribe` of one is refused;
//!   listings show a pending one as `PendingConfirmation`, and one just unsubscribed as
//!   `Deleted` for a moment.
//! - API Gateway: writes to one API while another is in flight are refused (`ConflictException`,
//!   "concurrent modification"); an integration or authorizer a route refers to cannot be deleted;
//!   authorizer names are unique in an API.
//! - S3: a notification to a function or topic whose permission or policy was written moments
//!   ago cannot be validated; a request to a bucket in another region is redirected (301).
//! - IAM: a new role is not found for a moment, and Lambda cannot assume it for a while longer.
//!   These delays and S3's validation last their clock *and* until a request met them once, so
//!   a test on a busy machine, whose next request came late, still sees the engine meet them.
//! - Lambda: a new function is `Pending`, an updated one `InProgress`; updates and
//!   `PublishVersion` meanwhile are refused (`ResourceConflictException`): "an update is in
//!   progress" while `InProgress`, "currently in the following state: Pending" while `Pending`.
//!   With [`Strict::refuse_tags`] the caller is one without `lambda:ListTags`: `GetFunction`
//!   answers `TagsError` instead of the tags.
//! - CloudFront: ETags change with every update and a stale `If-Match` is refused; a
//!   distribution is `InProgress` for a while after each change, and cannot be deleted while
//!   enabled or deploying; an alias another distribution serves is refused (`CNAMEAlreadyExists`).
//! - Route53: a change is `PENDING` for a while before `INSYNC`.
//! - KMS: a key disabled through the proxy refuses `Decrypt`, `GenerateDataKey` and `Encrypt`
//!   (`DisabledException`) until it is enabled again; moto uses it anyway. Keys are matched by
//!   id (an alias is not resolved).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::proxy::{Request, answer, ask_moto, rewritten, split_answer};

/// How long AWS takes, where it takes time.
#[derive(Clone, Debug)]
pub struct Clocks {
    /// A distribution `InProgress` after it is created or changed.
    pub deployment: Duration,
    /// A Route53 change `PENDING`.
    pub dns_change: Duration,
    /// A function `Pending` after its create, `InProgress` after an update.
    pub function: Duration,
    /// A role not found after its create.
    pub role_visible: Duration,
    /// A role Lambda cannot assume after its create.
    pub role_assumable: Duration,
    /// A permission or topic policy S3 cannot validate against after it is written.
    pub destination: Duration,
    /// How long each write to an API takes (so that concurrent writes overlap, as on AWS).
    pub api_write: Duration,
    /// How long listings still show an unsubscribed subscription, as `Deleted`.
    pub unsubscribed: Duration,
}

impl Clocks {
    /// Short clocks for tests: every rule shows, none takes long.
    pub fn short() -> Clocks {
        Clocks {
            deployment: Duration::from_secs(12),
            dns_change: Duration::from_secs(3),
            function: Duration::from_secs(2),
            role_visible: Duration::from_secs(1),
            role_assumable: Duration::from_secs(3),
            destination: Duration::from_secs(2),
            api_write: Duration::from_millis(150),
            unsubscribed: Duration::from_secs(5),
        }
    }

    /// AWS's clocks as the issue that asked for this emulator gives them (a distribution
    /// deploys in a minute, a DNS change is `PENDING` for ten seconds, a function `Pending` for
    /// a few), with IAM's and S3's eventual consistency at its usual few seconds. Real
    /// distributions take longer; what is measured is how close the engine comes to the
    /// longest clock, whatever it is.
    pub fn aws() -> Clocks {
        Clocks {
            deployment: Duration::from_secs(60),
            dns_change: Duration::from_secs(10),
            function: Duration::from_secs(5),
            role_visible: Duration::from_secs(2),
            role_assumable: Duration::from_secs(8),
            destination: Duration::from_secs(5),
            api_write: Duration::from_millis(300),
            unsubscribed: Duration::from_secs(10),
        }
    }

    /// The longest single clock: no apply can take less.
    pub fn longest(&self) -> Duration {
        [self.deployment, self.dns_change, self.function, self.role_visible + self.role_assumable, self.destination]
            .into_iter()
            .max()
            .unwrap_or_default()
    }
}

impl std::str::FromStr for Clocks {
    type Err = String;

    fn from_str(name: &str) -> Result<Clocks, String> {
        match name {
            "aws" => Ok(Clocks::aws()),
            "short" => Ok(Clocks::short()),
            other => Err(format!("unknown clocks `{other}`: `aws` or `short`")),
        }
    }
}

#[derive(Default)]
struct Memory {
    pending_subscriptions: HashSet<String>,
    /// Subscriptions just unsubscribed: (topic, protocol, endpoint), until when they are listed.
    unsubscribed: Vec<(String, String, String, Instant)>,
    api_writes: HashMap<String, usize>,
    /// Permissions (by function) and topic policies S3 cannot validate a notification against yet.
    permission_written: HashMap<String, Settling>,
    topic_policy_written: HashMap<String, Settling>,
    /// New roles IAM does not show yet, and new roles Lambda cannot assume yet.
    role_invisible: HashMap<String, Settling>,
    role_unassumable: HashMap<String, Settling>,
    /// Function name: until when it is busy, and whether it is being created.
    function_busy: HashMap<String, (Instant, bool)>,
    etag_version: HashMap<String, u32>,
    deploying_until: HashMap<String, Instant>,
    distribution_enabled: HashMap<String, bool>,
    change_pending_until: HashMap<String, Instant>,
    bucket_regions: HashMap<String, String>,
    disabled_keys: HashSet<String>,
}

/// A change AWS has not propagated yet. The delay lasts its clock from the change *and* until one
/// request has met it: on a busy machine the engine's next request may come after the clock ran
/// out, and AWS gives no bound the engine could count on, so every such rule is met at least once.
#[derive(Clone, Copy)]
struct Settling {
    since: Instant,
    met: bool,
}

impl Settling {
    fn now() -> Settling {
        Settling { since: Instant::now(), met: false }
    }

    /// Whether the change is still not visible, given the rule's clock; a request that asks
    /// while it is not has met it.
    fn meet(&mut self, clock: Duration) -> bool {
        let holds = !self.met || self.since.elapsed() < clock;
        self.met |= holds;
        holds
    }
}

pub struct Strict {
    upstream: u16,
    clocks: Clocks,
    memory: Mutex<Memory>,
    /// Whether the caller is denied `lambda:ListTags` (GetFunction then answers `TagsError`).
    tags_refused: std::sync::atomic::AtomicBool,
    /// Every answer a rule gave instead of moto's, for tests to see which rules the engine met.
    refusals: Mutex<Vec<String>>,
}

impl Strict {
    pub fn new(upstream: u16, clocks: Clocks) -> Strict {
        Strict {
            upstream,
            clocks,
            memory: Mutex::default(),
            tags_refused: std::sync::atomic::AtomicBool::new(false),
            refusals: Mutex::default(),
        }
    }

    pub fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    /// Plays a caller denied `lambda:ListTags` (or allowed again): `GetFunction` answers with
    /// `TagsError` in place of `Tags`, as AWS does.
    pub fn refuse_tags(&self, refused: bool) {
        self.tags_refused.store(refused, std::sync::atomic::Ordering::SeqCst);
    }

    /// Which rules refused what, in order: `RULE: SERVICE OPERATION`.
    pub fn refusals(&self) -> Vec<String> {
        self.refusals.lock().expect("lock").clone()
    }

    /// When the distribution's current deployment ends (or ended).
    pub fn deployed_at(&self, id: &str) -> Option<Instant> {
        self.memory.lock().expect("lock").deploying_until.get(id).copied()
    }

    fn refuse(&self, rule: &str, request: &Request, answer: Vec<u8>) -> Option<Vec<u8>> {
        self.refusals.lock().expect("lock").push(format!("{rule}: {}", request.label()));
        Some(answer)
    }

    /// AWS's answer instead of forwarding the request, if a rule gives one.
    pub fn before(&self, request: &Request) -> Option<Vec<u8>> {
        match request.service.as_str() {
            "sns" => self.sns_before(request),
            "apigateway" => self.api_before(request),
            "s3" => self.s3_before(request),
            "iam" => self.iam_before(request),
            "lambda" => self.lambda_before(request),
            "cloudfront" => self.cloudfront_before(request),
            "kms" => self.kms_before(request),
            _ => None,
        }
    }

    /// A forwarded request is done (whatever moto answered).
    pub fn done(&self, request: &Request) {
        if let Some(api) = api_write(request) {
            let mut memory = self.memory.lock().expect("lock");
            if let Some(n) = memory.api_writes.get_mut(&api) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// moto's answer as AWS would have given it, remembering what AWS would.
    pub fn after(&self, request: &Request, moto: Vec<u8>) -> Vec<u8> {
        let Some((status, _, body)) = split_answer(&moto) else { return moto };
        if !(200..300).contains(&status) {
            return moto;
        }
        match request.service.as_str() {
            "sns" => self.sns_after(request, moto, &body),
            "s3" => self.s3_after(request, moto),
            "iam" => self.iam_after(request, moto),
            "lambda" => self.lambda_after(request, moto, &body),
            "cloudfront" => self.cloudfront_after(request, moto, &body),
            "route53" => self.route53_after(request, moto, &body),
            _ => moto,
        }
    }

    // --- KMS: a disabled key cannot be used.

    fn kms_before(&self, request: &Request) -> Option<Vec<u8>> {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        // `arn:aws:kms:REGION:ACCOUNT:key/ID` or `ID`.
        let key = body["KeyId"].as_str().map(|k| k.rsplit('/').next().unwrap_or(k).to_string())?;
        let operation = request.operation.rsplit('.').next().unwrap_or_default();
        let mut memory = self.memory.lock().expect("lock");
        match operation {
            "DisableKey" => {
                memory.disabled_keys.insert(key);
                None
            }
            "EnableKey" => {
                memory.disabled_keys.remove(&key);
                None
            }
            "Decrypt" | "GenerateDataKey" | "Encrypt" if memory.disabled_keys.contains(&key) => {
                drop(memory);
                let body = format!(
                    r#"{{"__type":"DisabledException","message":"arn:aws:kms:us-east-1:123456789012:key/{key} is disabled."}}"#
                );
                let headers = [("Content-Type", "application/x-amz-json-1.1")];
                self.refuse("disabled KMS key", request, answer(400, &headers, &body))
            }
            _ => None,
        }
    }

    // --- SNS: https subscriptions stay pending, and pending ones cannot be unsubscribed.

    fn sns_before(&self, request: &Request) -> Option<Vec<u8>> {
        if request.operation != "Unsubscribe" {
            return None;
        }
        let arn = request.form("SubscriptionArn")?;
        if !self.memory.lock().expect("lock").pending_subscriptions.contains(&arn) {
            self.remember_unsubscribed(&arn);
            return None;
        }
        let body = query_error(
            "Sender",
            "InvalidParameter",
            "Invalid parameter: Cannot unsubscribe a subscription that is pending confirmation",
        );
        self.refuse("pending subscription", request, answer(400, &[("Content-Type", "text/xml")], &body))
    }

    fn sns_after(&self, request: &Request, moto: Vec<u8>, body: &str) -> Vec<u8> {
        let mut memory = self.memory.lock().expect("lock");
        match request.operation.as_str() {
            "Subscribe" if matches!(request.form("Protocol").as_deref(), Some("http" | "https")) => {
                if let Some(arn) = between(body, "<SubscriptionArn>", "</SubscriptionArn>") {
                    memory.pending_subscriptions.insert(arn.to_string());
                }
                moto
            }
            "SetTopicAttributes" if request.form("AttributeName").as_deref() == Some("Policy") => {
                if let Some(topic) = request.form("TopicArn") {
                    memory.topic_policy_written.insert(topic, Settling::now());
                }
                moto
            }
            "GetSubscriptionAttributes" => {
                let arn = request.form("SubscriptionArn").unwrap_or_default();
                if !memory.pending_subscriptions.contains(&arn) {
                    return moto;
                }
                let pending = body.replace(
                    "<key>PendingConfirmation</key><value>false</value>",
                    "<key>PendingConfirmation</key><value>true</value>",
                );
                rewritten(&moto, Some(pending), None)
            }
            "ListSubscriptionsByTopic" | "ListSubscriptions" => {
                let mut listed = body.to_string();
                for arn in &memory.pending_subscriptions {
                    let shown = format!("<SubscriptionArn>{arn}</SubscriptionArn>");
                    listed = listed.replace(&shown, "<SubscriptionArn>PendingConfirmation</SubscriptionArn>");
                }
                // Just unsubscribed: still listed for a moment, as `Deleted`.
                let topic = request.form("TopicArn");
                memory.unsubscribed.retain(|(.., until)| Instant::now() < *until);
                let gone: String = memory
                    .unsubscribed
                    .iter()
                    .filter(|(t, ..)| topic.as_deref().is_none_or(|wanted| wanted == t))
                    .map(|(t, protocol, endpoint, _)| {
                        format!(
                            "<member><TopicArn>{t}</TopicArn><Protocol>{protocol}</Protocol><SubscriptionArn>Deleted\
                             </SubscriptionArn><Owner>123456789012</Owner><Endpoint>{endpoint}</Endpoint></member>"
                        )
                    })
                    .collect();
                if !gone.is_empty() {
                    self.refusals
                        .lock()
                        .expect("lock")
                        .push(format!("unsubscribed listed as Deleted: {}", request.label()));
                }
                listed = listed.replacen("</Subscriptions>", &format!("{gone}</Subscriptions>"), 1);
                rewritten(&moto, Some(listed), None)
            }
            _ => moto,
        }
    }

    /// Notes what `arn` subscribes, so that listings show it as `Deleted` for a moment once it
    /// is unsubscribed.
    fn remember_unsubscribed(&self, arn: &str) {
        let Some(attributes) = ask_moto(
            self.upstream,
            "sns",
            "POST",
            &format!("/?Action=GetSubscriptionAttributes&SubscriptionArn={arn}"),
        ) else {
            return;
        };
        let value =
            |key: &str| between(&attributes, &format!("<key>{key}</key><value>"), "</value>").map(str::to_string);
        if let (Some(topic), Some(protocol), Some(endpoint)) = (value("TopicArn"), value("Protocol"), value("Endpoint"))
        {
            let until = Instant::now() + self.clocks.unsubscribed;
            self.memory.lock().expect("lock").unsubscribed.push((topic, protocol, endpoint, until));
        }
    }

    // --- API Gateway: one write per API at a time; what a route refers to stays.

    fn api_before(&self, request: &Request) -> Option<Vec<u8>> {
        let api = api_write(request)?;
        if let Some(refused) = self.referenced_by_a_route(request, &api) {
            return self.refuse("referenced by a route", request, refused);
        }
        if let Some(refused) = self.authorizer_name_taken(request, &api) {
            return self.refuse("authorizer name taken", request, refused);
        }
        {
            let mut memory = self.memory.lock().expect("lock");
            let in_flight = memory.api_writes.entry(api).or_default();
            if *in_flight > 0 {
                drop(memory);
                let body = r#"{"message":"Unable to complete operation due to concurrent modification. Please try again later."}"#;
                let headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ConflictException")];
                return self.refuse("concurrent modification", request, answer(409, &headers, body));
            }
            *in_flight += 1;
        }
        // An API write takes a moment on AWS: writes sent together overlap.
        std::thread::sleep(self.clocks.api_write);
        None
    }

    /// Authorizer names are unique in an API: a create, or a rename, to a name another
    /// authorizer of the API holds is refused.
    fn authorizer_name_taken(&self, request: &Request, api: &str) -> Option<Vec<u8>> {
        let path = request.path.split('?').next().unwrap_or_default();
        let own = path.split("/authorizers/").nth(1).map(str::to_string);
        let writes_name = (request.method == "POST" && path.ends_with("/authorizers"))
            || (request.method == "PATCH" && own.is_some());
        if !writes_name {
            return None;
        }
        let sent: serde_json::Value = serde_json::from_slice(&request.body).ok()?;
        let name = sent["name"].as_str()?;
        let listed = ask_moto(self.upstream, "apigateway", "GET", &format!("/v2/apis/{api}/authorizers"))?;
        let listed: serde_json::Value = serde_json::from_str(&listed).ok()?;
        let taken = listed["items"]
            .as_array()?
            .iter()
            .any(|a| a["name"] == name && own.as_deref() != a["authorizerId"].as_str());
        taken.then(|| {
            let body = format!(
                r#"{{"message":"Authorizer name must be unique. Authorizer {name} already exists in this RestApi."}}"#
            );
            answer(409, &[("Content-Type", "application/json"), ("x-amzn-ErrorType", "ConflictException")], &body)
        })
    }

    fn referenced_by_a_route(&self, request: &Request, api: &str) -> Option<Vec<u8>> {
        if request.method != "DELETE" {
            return None;
        }
        let (what, id) = ["integrations", "authorizers"]
            .into_iter()
            .find_map(|what| request.path.split(&format!("/{what}/")).nth(1).map(|id| (what, id.to_string())))?;
        let routes = ask_moto(self.upstream, "apigateway", "GET", &format!("/v2/apis/{api}/routes"))?;
        let routes: serde_json::Value = serde_json::from_str(&routes).ok()?;
        let refers = |r: &&serde_json::Value| match what {
            "integrations" => r["target"] == format!("integrations/{id}"),
            _ => r["authorizerId"] == id.as_str(),
        };
        let route = routes["items"].as_array()?.iter().find(refers)?;
        let message = format!(
            r#"{{"message":"Cannot delete {} {id}: it is referenced by route {}"}}"#,
            what.trim_end_matches('s'),
            route["routeId"].as_str().unwrap_or_default()
        );
        Some(answer(409, &[("Content-Type", "application/json"), ("x-amzn-ErrorType", "ConflictException")], &message))
    }

    // --- S3: fresh permissions cannot be validated yet; other regions redirect.

    fn s3_before(&self, request: &Request) -> Option<Vec<u8>> {
        if let Some(redirect) = self.wrong_region(request) {
            return self.refuse("bucket in another region", request, redirect);
        }
        if request.method != "PUT" || !request.path.ends_with("?notification") {
            return None;
        }
        let body = String::from_utf8_lossy(&request.body);
        let mut memory = self.memory.lock().expect("lock");
        let clock = self.clocks.destination;
        let functions = all_between(&body, "<CloudFunction>", "</CloudFunction>");
        let topics = all_between(&body, "<Topic>", "</Topic>");
        // Every destination is judged (and each unvalidated one met), not only the first.
        let mut unvalidated = false;
        for arn in &functions {
            unvalidated |= memory.permission_written.get_mut(function_name(arn)).is_some_and(|w| w.meet(clock));
        }
        for arn in &topics {
            unvalidated |= memory.topic_policy_written.get_mut(*arn).is_some_and(|w| w.meet(clock));
        }
        drop(memory);
        if !unvalidated {
            return None;
        }
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidArgument</Code><Message>Unable to validate the \
             following destination configurations</Message><ArgumentName1>{}</ArgumentName1><RequestId>strict</RequestId></Error>",
            functions.first().or(topics.first()).copied().unwrap_or_default()
        );
        self.refuse(
            "destination not validated yet",
            request,
            answer(400, &[("Content-Type", "application/xml")], &body),
        )
    }

    /// A 301 for a request about a bucket that lives in another region than it is signed for.
    fn wrong_region(&self, request: &Request) -> Option<Vec<u8>> {
        let bucket = request.path.trim_start_matches('/').split(['/', '?']).next().filter(|b| !b.is_empty())?;
        if request.path.contains("?location") || (request.method == "PUT" && !request.path.contains('?')) {
            return None; // GetBucketLocation answers from anywhere; CreateBucket says its region.
        }
        let signed = request.region()?;
        let region = self.bucket_region(bucket)?;
        if region == signed {
            return None;
        }
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are \
             attempting to access must be addressed using the specified endpoint.</Message><Bucket>{bucket}</Bucket>\
             <Endpoint>{bucket}.s3.{region}.amazonaws.com</Endpoint><RequestId>strict</RequestId></Error>"
        );
        let body = if request.method == "HEAD" { String::new() } else { body };
        Some(answer(301, &[("Content-Type", "application/xml"), ("x-amz-bucket-region", &region)], &body))
    }

    fn bucket_region(&self, bucket: &str) -> Option<String> {
        if let Some(region) = self.memory.lock().expect("lock").bucket_regions.get(bucket) {
            return Some(region.clone());
        }
        let location = ask_moto(self.upstream, "s3", "GET", &format!("/{bucket}?location"))?;
        let region = match between(&location, "<LocationConstraint", "</LocationConstraint>") {
            Some(c) => c.trim_start_matches(|ch| ch != '>').trim_start_matches('>').to_string(),
            None => String::new(),
        };
        let region = if region.is_empty() { "us-east-1".to_string() } else { region };
        self.memory.lock().expect("lock").bucket_regions.insert(bucket.to_string(), region.clone());
        Some(region)
    }

    fn s3_after(&self, request: &Request, moto: Vec<u8>) -> Vec<u8> {
        if request.method == "DELETE" && !request.path.contains('?') {
            let bucket = request.path.trim_matches('/').to_string();
            self.memory.lock().expect("lock").bucket_regions.remove(&bucket);
        }
        moto
    }

    // --- IAM: a new role is not there for a moment.

    fn iam_before(&self, request: &Request) -> Option<Vec<u8>> {
        if request.operation == "CreateRole" {
            return None;
        }
        let role = request.form("RoleName")?;
        let invisible = self
            .memory
            .lock()
            .expect("lock")
            .role_invisible
            .get_mut(&role)
            .is_some_and(|r| r.meet(self.clocks.role_visible));
        if !invisible {
            return None;
        }
        let body = query_error("Sender", "NoSuchEntity", &format!("The role with name {role} cannot be found."));
        self.refuse("new role not visible yet", request, answer(404, &[("Content-Type", "text/xml")], &body))
    }

    fn iam_after(&self, request: &Request, moto: Vec<u8>) -> Vec<u8> {
        if request.operation == "CreateRole"
            && let Some(role) = request.form("RoleName")
        {
            let mut memory = self.memory.lock().expect("lock");
            memory.role_invisible.insert(role.clone(), Settling::now());
            memory.role_unassumable.insert(role, Settling::now());
        }
        moto
    }

    // --- Lambda: new roles not assumable yet; functions busy while created or updated.

    fn lambda_before(&self, request: &Request) -> Option<Vec<u8>> {
        let function = lambda_function(&request.path).unwrap_or_default();
        let creating = request.method == "POST" && request.path.trim_end_matches('/') == "/2015-03-31/functions";
        let updating = (request.method == "PUT"
            && (request.path.ends_with("/code") || request.path.ends_with("/configuration")))
            || (request.method == "POST" && request.path.trim_end_matches('/').ends_with("/versions"));
        if creating || request.path.ends_with("/configuration") {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
            if let Some(role) = body["Role"].as_str().and_then(|arn| arn.rsplit('/').next()) {
                let clock = self.clocks.role_assumable;
                let unassumable =
                    self.memory.lock().expect("lock").role_unassumable.get_mut(role).is_some_and(|r| r.meet(clock));
                if unassumable {
                    let body =
                        r#"{"Type":"User","message":"The role defined for the function cannot be assumed by Lambda."}"#;
                    let headers =
                        [("Content-Type", "application/json"), ("x-amzn-ErrorType", "InvalidParameterValueException")];
                    return self.refuse("new role not assumable yet", request, answer(400, &headers, body));
                }
            }
        }
        if updating && let Some(creating) = self.busy(&function) {
            let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{function}");
            let body = if creating {
                format!(
                    r#"{{"Type":"User","message":"The operation cannot be performed at this time. The function is currently in the following state: Pending","Reason":"Creating","ResourceArn":"{arn}"}}"#
                )
            } else {
                format!(
                    r#"{{"Type":"User","message":"The operation cannot be performed at this time. An update is in progress for resource: {arn}"}}"#
                )
            };
            let headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ResourceConflictException")];
            return self.refuse("function update in progress", request, answer(409, &headers, &body));
        }
        None
    }

    /// Whether the function is busy, and if so whether it is being created.
    fn busy(&self, function: &str) -> Option<bool> {
        let memory = self.memory.lock().expect("lock");
        let (until, creating) = memory.function_busy.get(function)?;
        (Instant::now() < *until).then_some(*creating)
    }

    fn lambda_after(&self, request: &Request, moto: Vec<u8>, body: &str) -> Vec<u8> {
        let until = Instant::now() + self.clocks.function;
        let created = request.method == "POST" && request.path.trim_end_matches('/') == "/2015-03-31/functions";
        if created {
            let sent: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
            if let Some(name) = sent["FunctionName"].as_str() {
                self.memory.lock().expect("lock").function_busy.insert(name.to_string(), (until, true));
            }
            return moto;
        }
        let Some(function) = lambda_function(&request.path) else { return moto };
        if request.method == "POST" && request.path.ends_with("/policy") {
            self.memory.lock().expect("lock").permission_written.insert(function, Settling::now());
            return moto;
        }
        if request.method == "PUT" && (request.path.ends_with("/code") || request.path.ends_with("/configuration")) {
            self.memory.lock().expect("lock").function_busy.insert(function, (until, false));
            return moto;
        }
        if request.method == "GET" && !request.path.contains("/policy") {
            let mut shown = body.to_string();
            let get_function =
                request.path.split('?').next().is_some_and(|p| p.trim_end_matches('/').matches('/').count() == 3);
            if get_function && self.tags_refused.load(std::sync::atomic::Ordering::SeqCst) {
                shown = without_tags(&shown, &function);
            }
            if let Some(creating) = self.busy(&function) {
                shown = shown.replace("\"LastUpdateStatus\": \"Successful\"", "\"LastUpdateStatus\": \"InProgress\"");
                if creating {
                    shown = shown.replace("\"State\": \"Active\"", "\"State\": \"Pending\"");
                }
            }
            return if shown == body { moto } else { rewritten(&moto, Some(shown), None) };
        }
        moto
    }

    // --- CloudFront: ETags move, deployments take time, aliases are unique.

    fn cloudfront_before(&self, request: &Request) -> Option<Vec<u8>> {
        if request.method == "POST" && request.path.starts_with("/2020-05-31/distribution") {
            return self.cname_taken(request);
        }
        let id = cloudfront_id(&request.path)?;
        let writes = request.method == "DELETE" || (request.method == "PUT" && request.path.ends_with("/config"));
        if !writes {
            return None;
        }
        let memory = self.memory.lock().expect("lock");
        let current = etag(&id, memory.etag_version.get(&id).copied().unwrap_or(1));
        let deploying = memory.deploying_until.get(&id).is_some_and(|t| Instant::now() < *t);
        let enabled = memory.distribution_enabled.get(&id).copied().unwrap_or(false);
        drop(memory);
        if request.header("if-match") != Some(current.as_str()) {
            let body = xml_error(
                "PreconditionFailed",
                "The request failed because it didn't meet the preconditions in one or more request-header fields.",
            );
            return self.refuse("stale etag", request, answer(412, &[("Content-Type", "text/xml")], &body));
        }
        if request.method == "DELETE" && request.path.contains("/distribution/") && (enabled || deploying) {
            let body = xml_error(
                "DistributionNotDisabled",
                "The distribution you are trying to delete has not been disabled.",
            );
            return self.refuse(
                "distribution not disabled and deployed",
                request,
                answer(409, &[("Content-Type", "text/xml")], &body),
            );
        }
        None
    }

    fn cname_taken(&self, request: &Request) -> Option<Vec<u8>> {
        let body = String::from_utf8_lossy(&request.body);
        let wanted = all_between(&body, "<CNAME>", "</CNAME>");
        if wanted.is_empty() {
            return None;
        }
        let listed = ask_moto(self.upstream, "cloudfront", "GET", "/2020-05-31/distribution")?;
        let served = all_between(&listed, "<CNAME>", "</CNAME>");
        if !wanted.iter().any(|w| served.contains(w)) {
            return None;
        }
        let body = xml_error(
            "CNAMEAlreadyExists",
            "One or more of the CNAMEs you provided are already associated with a different resource.",
        );
        self.refuse("alias served elsewhere", request, answer(409, &[("Content-Type", "text/xml")], &body))
    }

    fn cloudfront_after(&self, request: &Request, moto: Vec<u8>, body: &str) -> Vec<u8> {
        let mut memory = self.memory.lock().expect("lock");
        let created = request.method == "POST";
        let id =
            if created { between(body, "<Id>", "</Id>").map(str::to_string) } else { cloudfront_id(&request.path) };
        let Some(id) = id else { return moto };
        let is_distribution = request.path.starts_with("/2020-05-31/distribution");
        if created || (request.method == "PUT" && request.path.ends_with("/config")) {
            *memory.etag_version.entry(id.clone()).or_insert(0) += 1;
            if is_distribution {
                memory.deploying_until.insert(id.clone(), Instant::now() + self.clocks.deployment);
                let sent = String::from_utf8_lossy(&request.body);
                memory.distribution_enabled.insert(id.clone(), sent.contains("<Enabled>true</Enabled>"));
            }
        }
        if request.method == "DELETE" {
            return moto;
        }
        let version = memory.etag_version.get(&id).copied().unwrap_or(1);
        let deploying = memory.deploying_until.get(&id).is_some_and(|t| Instant::now() < *t);
        drop(memory);
        let shown = (is_distribution && deploying)
            .then(|| body.replace("<Status>Deployed</Status>", "<Status>InProgress</Status>"));
        rewritten(&moto, shown, Some(("ETag", etag(&id, version))))
    }

    // --- Route53: changes are pending for a while.

    fn route53_after(&self, request: &Request, moto: Vec<u8>, body: &str) -> Vec<u8> {
        let mut memory = self.memory.lock().expect("lock");
        if request.method == "POST" && request.path.contains("/rrset") {
            if let Some(id) = between(body, "<Id>", "</Id>") {
                let id = id.trim_start_matches("/change/").to_string();
                memory.change_pending_until.insert(id, Instant::now() + self.clocks.dns_change);
            }
            return rewritten(&moto, Some(body.replace("<Status>INSYNC</Status>", "<Status>PENDING</Status>")), None);
        }
        if let Some(id) = request.path.strip_prefix("/2013-04-01/change/")
            && memory.change_pending_until.get(id).is_some_and(|t| Instant::now() < *t)
        {
            return rewritten(&moto, Some(body.replace("<Status>INSYNC</Status>", "<Status>PENDING</Status>")), None);
        }
        moto
    }
}

/// A GetFunction answer as a caller without `lambda:ListTags` gets it: `TagsError`, no `Tags`.
fn without_tags(body: &str, function: &str) -> String {
    let Ok(mut answer) = serde_json::from_str::<serde_json::Value>(body) else { return body.to_string() };
    if let Some(obj) = answer.as_object_mut() {
        obj.remove("Tags");
        obj.insert(
            "TagsError".into(),
            serde_json::json!({
                "ErrorCode": "AccessDeniedException",
                "Message": format!("User is not authorized to perform: lambda:ListTags on resource: {function}"),
            }),
        );
    }
    answer.to_string()
}

/// The API a write request changes: any POST, PUT, PATCH or DELETE under `/v2/apis/ID`.
fn api_write(request: &Request) -> Option<String> {
    if !matches!(request.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
        return None;
    }
    let id = request.path.strip_prefix("/v2/apis/")?.split(['/', '?']).next()?;
    (!id.is_empty()).then(|| id.to_string())
}

/// The function a Lambda request is about (`/2015-03-31/functions/NAME...`).
fn lambda_function(path: &str) -> Option<String> {
    let name = path.strip_prefix("/2015-03-31/functions/")?.split(['/', '?']).next()?;
    (!name.is_empty()).then(|| percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned())
}

fn function_name(arn: &str) -> &str {
    arn.split(":function:").nth(1).map_or(arn, |rest| rest.split(':').next().unwrap_or(rest))
}

/// The distribution or origin access control a CloudFront request is about.
fn cloudfront_id(path: &str) -> Option<String> {
    let rest = path
        .strip_prefix("/2020-05-31/distribution/")
        .or_else(|| path.strip_prefix("/2020-05-31/origin-access-control/"))?;
    let id = rest.split(['/', '?']).next()?;
    (!id.is_empty()).then(|| id.to_string())
}

fn etag(id: &str, version: u32) -> String {
    format!("E{id}V{version}")
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

fn all_between<'a>(text: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(close) else { break };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

fn query_error(kind: &str, code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>strict</RequestId></ErrorResponse>"
    )
}

fn xml_error(code: &str, message: &str) -> String {
    query_error("Sender", code, message)
}
