"""The live-AWS acceptance suite, run by scripts/test-aws (see there for how to call it).

Deploys specs/cruddur.yaml into a unique name prefix, runs the avatar flow for real (a Cognito
token, the API through the Lambda authorizer, a presigned PUT, the thumbnail in the assets
bucket served through CloudFront, the S3 notification through SNS), destroys the stack and
lists anything left behind, by the engine's ownership tags and by name. Every check goes
through boto3 or plain HTTPS, never through the engine's state.

With --moto it runs against a moto server it starts (CI does this, so the suite cannot rot):
the steps an emulator cannot do are skipped and named, and the run fails if any other step
fails. Against AWS it refuses to start unless CRUDDUR_LIVE_AWS=1 is set, and first prints the
account, the region, how long it takes and what it costs.

It runs as a release acceptance test would: the state lives in S3, sealed with a KMS key; every
command runs as its own IAM role holding exactly the policy `iam-policy --for COMMAND` prints
(the suite's own credentials only make the prerequisites, the roles and the checks); drift
right after apply must be clean (with the https webhook still pending confirmation on AWS); a
code change is deployed and rolled back; the suite empties what it filled before destroy, and
confirms every leftover through the owning service's own API.

Inputs (live): DOMAIN_NAME, an existing public hosted zone; ASSETS_CERTIFICATE_ARN, an issued
ACM certificate in us-east-1 covering <prefix>-assets.<DOMAIN_NAME> (a wildcard for the domain
does); optionally CRUDDUR_TEST_PREFIX (default cit-<6 hex>), THUMBING_WEBHOOK_URL and
CRUDDUR_TEST_KMS_KEY (an existing key for the state; else the suite makes one and schedules its
deletion). The usual AWS credential chain and AWS_REGION.
"""

import argparse
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "cruddur.yaml"
AVATAR = ROOT / "tests" / "fixtures" / "avatar.jpg"
OWNER_TAG = "cruddur-infra:lineage"
EXPECTED = "about 15 minutes (CloudFront deploys twice: once created, once disabled before it is deleted)"
COST = (
    "about US$0.30: a KMS key for the state (US$1 a month, billed until its deletion, which AWS "
    "schedules 7 days out; none with CRUDDUR_TEST_KMS_KEY), and cents of Lambda, S3, CloudFront, "
    "SNS, SQS and Route53 requests, mostly within free tiers; nothing is left running (the hosted "
    "zone and the certificate are yours and stay)"
)
# The commands the suite runs, each as its own role with the policy `iam-policy --for` prints.
COMMANDS = ("plan", "apply", "drift", "destroy")


def say(*a):
    print(*a, flush=True)


class Skip(Exception):
    """A step an emulator cannot do: named, not failed."""


class Suite:
    def __init__(self, moto):
        self.moto = moto
        self.results = []  # (step, "passed" | "skipped" | "FAILED", seconds, detail)

    def step(self, name, fn):
        start = time.monotonic()
        try:
            detail = fn() or ""
            status = "passed"
        except Skip as why:
            status, detail = "skipped", str(why)
        except Exception as e:  # a failed step is reported, the suite goes on to clean up
            status, detail = "FAILED", f"{type(e).__name__}: {e}"
        took = time.monotonic() - start
        self.results.append((name, status, took, detail))
        say(f"[{status:>7}] {name} ({took:.1f} s){': ' + detail if detail else ''}")
        return status == "passed"

    def live_only(self, why):
        if self.moto:
            raise Skip(f"moto cannot: {why}")

    def failed(self):
        return [r for r in self.results if r[1] == "FAILED"]


class Moto:
    """scripts/moto-server on a free port, for --moto."""

    def __init__(self, work):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [str(ROOT / "scripts" / "moto-server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=open(work / "moto.log", "w"),
            env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
        )
        self.endpoint = f"http://127.0.0.1:{self.port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/")
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"moto did not start: {(work / 'moto.log').read_text()[-2000:]}")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def engine_binary():
    """The engine scripts/test built (CRUDDUR_INFRA_BIN), or else builds it (the profile the
    tests use) and returns its path, wherever the target directory is."""
    given = os.environ.get("CRUDDUR_INFRA_BIN")
    if given:
        if not os.access(given, os.X_OK):
            raise SystemExit(f"CRUDDUR_INFRA_BIN={given} is not an executable")
        return Path(given)
    subprocess.run(["cargo", "build", "--quiet", "--bin", "cruddur-infra"], cwd=ROOT, check=True)
    meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT))
    return Path(meta["target_directory"]) / "debug" / "cruddur-infra"


def http(method, url, body=None, headers=None, timeout=30):
    """(status, headers, body bytes) of one HTTPS request, errors included."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def until(what, check, within, every=2.0):
    """Polls `check` until it returns something truthy; raises naming `what` after `within` s."""
    deadline, last = time.monotonic() + within, None
    while True:
        try:
            got = check()
            if got:
                return got
        except Exception as e:  # noqa: BLE001 - kept for the message
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {within:.0f} s{f' (last error: {last})' if last else ''}")
        time.sleep(every)


def jpeg_size(data):
    """(width, height) from a JPEG's frame header."""
    i = 2
    while i < len(data):
        if data[i] != 0xFF:
            raise ValueError("not a JPEG")
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    raise ValueError("no frame header")


class Stack:
    """One deployment of the Cruddur spec under a prefix, and what it needs."""

    def __init__(self, args, suite, work, endpoint):
        self.suite, self.work, self.endpoint = suite, work, endpoint
        self.session = boto3.session.Session()
        self.region = os.environ.get("AWS_REGION") or self.session.region_name or ("us-east-1" if endpoint else None)
        if not self.region:
            raise SystemExit("no region: set AWS_REGION")
        self.account = self.client("sts").get_caller_identity()["Account"]
        self.prefix = os.environ.get("CRUDDUR_TEST_PREFIX") or f"cit-{secrets.token_hex(3)}"
        self.domain = os.environ.get("DOMAIN_NAME") or ("cruddur.test" if endpoint else None)
        self.subdomain = f"{self.prefix}-assets"
        self.uploads = f"{self.prefix}-uploads-{self.account}"
        self.assets = f"{self.prefix}-assets-{self.account}"
        self.topic_name = f"{self.prefix}-assets"
        self.state = work / "state.json"
        self.engine = None
        self.outputs = {}
        self.pool = self.client_id = self.password = None
        self.username = "avatar-acceptance"
        self.token = None
        self.upload = None  # the presigner's answer
        self.probe = None  # (queue url, subscription arn)
        self.destroyed = False
        self.state_bucket = f"{self.prefix}-state-{self.account}"
        self.state_url = f"s3://{self.state_bucket}/cruddur.json"
        self.kms_key = os.environ.get("CRUDDUR_TEST_KMS_KEY")
        self.made_kms_key = None  # the key id, when the suite made it
        self.roles = {}  # command -> role ARN
        self.uploaded = []  # (bucket, key) the suite put
        self.versions_before = {}  # function -> version `live` served before the code change
        self.lineage = None  # the ownership tag's value, read from AWS after apply

    def creates(self):
        """What the suite makes in the account, for the banner."""
        return [
            f"a Cognito user pool {self.prefix}-users with one user",
            f"buckets {self.assets} (adopted by the stack) and {self.state_bucket} (the state)",
            "a KMS key for the state" if not self.kms_key else f"nothing in KMS (uses {self.kms_key})",
            f"roles {', '.join(f'{self.prefix}-deployer-{c}' for c in COMMANDS)}",
            f"the stack: 29 resources named {self.prefix}-*, {self.uploads}, the record {self.subdomain}.{self.domain}",
            f"an SQS queue {self.prefix}-probe subscribed to the stack's topic",
        ]

    def client(self, service, region=None):
        config = Config(retries={"mode": "standard", "max_attempts": 8})
        kwargs = {"region_name": region or self.region, "config": config}
        if self.endpoint:
            kwargs.update(endpoint_url=self.endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
        if service == "s3" and self.endpoint:
            kwargs["config"] = config.merge(Config(s3={"addressing_style": "path"}))
        return self.session.client(service, **kwargs)

    # -- what the stack expects to exist --------------------------------------------------

    def prerequisites(self):
        if self.endpoint:
            self.client("route53").create_hosted_zone(Name=self.domain, CallerReference=self.prefix)
            acm = self.client("acm", "us-east-1")
            self.certificate = acm.request_certificate(DomainName=f"*.{self.domain}", ValidationMethod="DNS")["CertificateArn"]
        else:
            self.certificate = os.environ["ASSETS_CERTIFICATE_ARN"]
        cognito = self.client("cognito-idp")
        self.pool = cognito.create_user_pool(PoolName=f"{self.prefix}-users")["UserPool"]["Id"]
        self.client_id = cognito.create_user_pool_client(
            UserPoolId=self.pool, ClientName=f"{self.prefix}-frontend",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        self.password = "Aa1!" + secrets.token_urlsafe(18)
        cognito.admin_create_user(UserPoolId=self.pool, Username=self.username, MessageAction="SUPPRESS")
        cognito.admin_set_user_password(UserPoolId=self.pool, Username=self.username, Password=self.password, Permanent=True)
        # The assets bucket was made by hand in the original stack: the spec adopts it.
        s3 = self.client("s3")
        for bucket in (self.assets, self.state_bucket):
            if self.region == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        s3.put_bucket_versioning(Bucket=self.state_bucket, VersioningConfiguration={"Status": "Enabled"})
        if not self.kms_key:
            key = self.client("kms").create_key(Description=f"cruddur-infra acceptance {self.prefix}: state")
            self.made_kms_key = key["KeyMetadata"]["KeyId"]
            self.kms_key = key["KeyMetadata"]["Arn"]
        return f"user pool {self.pool}, assets bucket {self.assets}, state s3://{self.state_bucket} under {self.kms_key}"

    def deployer_roles(self):
        """One role per command, holding exactly the policy `iam-policy --for COMMAND` prints."""
        iam = self.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{self.account}:root"}, "Action": "sts:AssumeRole"}]}
        for command in COMMANDS:
            policy = self.run("iam-policy", "--for", command, role=None).stdout
            name = f"{self.prefix}-deployer-{command}"
            self.roles[command] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
            iam.put_role_policy(RoleName=name, PolicyName="cruddur-infra", PolicyDocument=policy)
        return ", ".join(f"{c}: {len(json.loads(self.run('iam-policy', '--for', c, role=None).stdout)['Statement'])} statements"
                         for c in COMMANDS)

    def credentials(self, command):
        """Temporary credentials of the command's role (IAM takes a few seconds to let a new
        role be assumed)."""
        sts = self.client("sts")
        assumed = until(f"assuming {self.roles[command]}", lambda: sts.assume_role(
            RoleArn=self.roles[command], RoleSessionName=f"cruddur-{command}")["Credentials"], within=60, every=3)
        return {"AWS_ACCESS_KEY_ID": assumed["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": assumed["SecretAccessKey"],
                "AWS_SESSION_TOKEN": assumed["SessionToken"]}

    # -- the engine -----------------------------------------------------------------------

    def env(self):
        env = {
            **os.environ,
            "NO_COLOR": "1",
            "AWS_REGION": self.region,
            "NAME_PREFIX": self.prefix,
            "UPLOADS_BUCKET_NAME": self.uploads,
            "ASSETS_BUCKET_NAME": self.assets,
            "THUMBING_TOPIC_NAME": self.topic_name,
            "ASSETS_SUBDOMAIN": self.subdomain,
            "DOMAIN_NAME": self.domain,
            "ASSETS_CERTIFICATE_ARN": self.certificate,
            "COGNITO_USER_POOL_ID": self.pool,
            "COGNITO_USER_POOL_CLIENT_ID": self.client_id,
            # An https endpoint that never confirms: the subscription stays pending, as a real
            # webhook's does until its owner confirms it (drift must be clean all the same).
            "THUMBING_WEBHOOK_URL": os.environ.get("THUMBING_WEBHOOK_URL", f"https://{self.prefix}.invalid/avatar-webhook"),
            "FRONTEND_ORIGIN": os.environ.get("FRONTEND_ORIGIN", f"https://{self.prefix}.{self.domain}"),
            **{f"{n.upper()}_SOURCE": str(ROOT / "lambdas" / n) for n in ("thumbnailer", "authorizer", "presigner")},
        }
        if self.endpoint:
            env.update(AWS_ENDPOINT_URL=self.endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                       CRUDDUR_S3_FORCE_PATH_STYLE="true")
            env.pop("AWS_PROFILE", None)
        if self.kms_key:
            env["CRUDDUR_STATE_ENCRYPTION"] = f"kms:{self.kms_key}"
        return env

    def run(self, *args, ok=(0,), role="same"):
        """`cruddur-infra ARGS` on the suite's spec and S3 state, as the role of the command it
        is (`role=None`: the suite's own credentials; rollback runs as apply)."""
        cmd = [str(self.engine), *args, "--spec", str(SPEC), "--state", self.state_url]
        if args[0] == "output":
            cmd = [str(self.engine), "output", "--json", "--state", self.state_url]
        env = self.env()
        command = {"rollback": "apply"}.get(args[0], args[0]) if role == "same" else role
        if command in self.roles:
            env.pop("AWS_PROFILE", None)
            env.update(self.credentials(command))
        out = subprocess.run(cmd, cwd=self.work, env=env, capture_output=True, text=True)
        with open(self.work / f"{args[0]}.log", "a") as log:
            log.write(f"$ {' '.join(args)} (as {command if command in self.roles else 'the suite'})\n{out.stdout}{out.stderr}\n")
        if out.returncode not in ok:
            raise AssertionError(f"`cruddur-infra {' '.join(args)}` exited {out.returncode}:\n{out.stderr[-3000:] or out.stdout[-3000:]}")
        return out

    def apply(self):
        self.run("apply", "--auto-approve")
        self.outputs = json.loads(self.run("output", role="plan").stdout)
        listed = self.run("state", "list", role="plan").stdout.splitlines()
        # The lineage every resource is tagged with, as S3 shows it: what the leak check looks for.
        tags = self.client("s3").get_bucket_tagging(Bucket=self.uploads)["TagSet"]
        self.lineage = next(t["Value"] for t in tags if t["Key"] == OWNER_TAG)
        return f"{len(listed)} resources; api {self.output('api_endpoint')}"

    def drift_is_clean(self):
        out = self.run("drift", ok=(0, 2))
        if out.returncode != 0:
            raise AssertionError(f"drift right after apply:\n{out.stdout[-3000:]}")
        return out.stdout.strip().splitlines()[0]

    def state_is_sealed(self):
        """The state, its backup and every version S3 keeps hold only ciphertext."""
        s3 = self.client("s3")
        # The lock object is plain by design: it names the holder, never a resource.
        versions = [v for v in s3.list_object_versions(Bucket=self.state_bucket).get("Versions", [])
                    if not v["Key"].endswith(".lock")]
        assert versions, f"nothing in s3://{self.state_bucket}"
        for v in versions:
            body = s3.get_object(Bucket=self.state_bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            try:
                head = json.loads(body.splitlines()[0])
            except ValueError:
                head = {}
            assert head.get("cruddur_encrypted") == 1, f"{v['Key']} ({v['VersionId']}) is not sealed: {body[:80]!r}"
            assert self.prefix.encode() not in body, f"{v['Key']} shows a resource name in plain text"
        return f"{len(versions)} object version(s) of {sorted({v['Key'] for v in versions})}, all sealed"

    def code_change_and_rollback(self):
        """A code change (the dev build is other code than the release build) publishes a
        version and moves `live`; rollback moves it back; apply serves the source again."""
        lam = self.client("lambda")
        names = {f: f"{self.prefix}-{f}" for f in ("thumbnailer", "authorizer", "presigner")}
        alias = lambda name: lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"]  # noqa: E731
        self.versions_before = {f: alias(n) for f, n in names.items()}
        self.run("apply", "--auto-approve", "--build-profile", "dev")
        after = {f: alias(n) for f, n in names.items()}
        for f in names:
            assert int(after[f]) > int(self.versions_before[f]), f"{f}: live still on {after[f]}"
        self.run("rollback", "lambda_function.presigner")
        assert alias(names["presigner"]) == self.versions_before["presigner"], "rollback did not move live back"
        code = lam.get_function_configuration(FunctionName=names["presigner"], Qualifier="live")["CodeSha256"]
        moved = self.run("plan", "--detailed-exitcode", "--build-profile", "dev", ok=(2,)).stdout
        assert "lambda_function.presigner" in moved, moved[-2000:]
        self.run("apply", "--auto-approve")
        served = {f: lam.get_function_configuration(FunctionName=n, Qualifier="live")["CodeSha256"] for f, n in names.items()}
        assert served["presigner"] == code, "the release build should serve again after the dev round trip"
        self.plan_is_empty()
        return f"versions {self.versions_before} -> {after}; presigner rolled back and released again"

    def output(self, name):
        value = self.outputs[name]
        return value["value"] if isinstance(value, dict) and "value" in value else value

    def plan_is_empty(self):
        out = self.run("plan", "--detailed-exitcode", ok=(0, 2))
        if out.returncode != 0:
            raise AssertionError(f"the second plan has changes:\n{out.stdout[-3000:]}")

    # -- checks through the AWS API -------------------------------------------------------

    def deployed_as_declared(self):
        names = [f"{self.prefix}-{f}" for f in ("thumbnailer", "authorizer", "presigner")]
        lam = self.client("lambda")
        for name in names:
            config = lam.get_function_configuration(FunctionName=name)
            assert config["State"] == "Active", f"{name} is {config['State']}"
            assert config["Role"].endswith(f"role/{name}"), f"{name} runs as {config['Role']}"
            # Invokers call the live alias, which serves the uploaded code.
            live = lam.get_function_configuration(FunctionName=name, Qualifier="live")
            assert live["CodeSha256"] == config["CodeSha256"], f"{name}: live serves other code"
            policy = json.loads(lam.get_policy(FunctionName=name, Qualifier="live")["Policy"])
            assert policy["Statement"], f"{name}: the live alias lets nobody invoke it"
        s3 = self.client("s3")
        uploads = s3.get_bucket_notification_configuration(Bucket=self.uploads).get("LambdaFunctionConfigurations", [])
        assert any(c["LambdaFunctionArn"].endswith(f":function:{names[0]}:live") for c in uploads), f"uploads notify {uploads}"
        assets = s3.get_bucket_notification_configuration(Bucket=self.assets).get("TopicConfigurations", [])
        assert any(c["TopicArn"].endswith(f":{self.topic_name}") for c in assets), f"assets notify {assets}"
        api = self.output("api_endpoint").split("//")[1].split(".")[0]
        routes = self.client("apigatewayv2").get_routes(ApiId=api)["Items"]
        assert [r["RouteKey"] for r in routes] == ["POST /avatars/key_upload"], routes
        assert routes[0]["AuthorizationType"] == "CUSTOM", routes[0]
        cloudfront = self.client("cloudfront", "us-east-1")
        host = f"{self.subdomain}.{self.domain}"
        dists = cloudfront.list_distributions()["DistributionList"].get("Items", [])
        dist = next(d for d in dists if host in d["Aliases"].get("Items", []))
        assert dist["Status"] == "Deployed" and dist["Enabled"] and dist["IsIPV6Enabled"], dist["Status"]
        zone = self.zone_id()
        records = self.client("route53").list_resource_record_sets(HostedZoneId=zone, StartRecordName=host)["ResourceRecordSets"]
        kinds = {r["Type"] for r in records if r["Name"].rstrip(".") == host and "AliasTarget" in r}
        assert kinds == {"A", "AAAA"}, f"alias records for {host}: {kinds}"
        return f"3 functions Active, notifications, route, distribution {dist['Id']} Deployed, A/AAAA {host}"

    def zone_id(self):
        zones = self.client("route53").list_hosted_zones_by_name(DNSName=self.domain)["HostedZones"]
        return next(z["Id"] for z in zones if z["Name"].rstrip(".") == self.domain and not z["Config"]["PrivateZone"])

    def cognito_token(self):
        auth = self.client("cognito-idp").initiate_auth(
            ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": self.username, "PASSWORD": self.password},
        )
        self.token = auth["AuthenticationResult"]["AccessToken"]
        return f"an access token for {self.username}"

    def api_with_token(self):
        self.suite.live_only("API Gateway v2 in moto routes no request to an authorizer or integration")
        url = f"{self.output('api_endpoint')}/avatars/key_upload"
        body = json.dumps({"extension": "jpg"}).encode()

        def call():
            status, _, answer = http("POST", url, body, {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
            if status in (404, 500, 502, 503):  # a new stage and integration settle within seconds
                return None
            assert status == 200, f"{status}: {answer[:500]!r}"
            return json.loads(answer)

        self.upload = until("the presigner's answer", call, within=90)
        assert self.upload["method"] == "PUT" and self.upload["key"].endswith(".jpg"), self.upload
        return f"upload key {self.upload['key']}"

    def api_refuses_tampered_token(self):
        self.suite.live_only("API Gateway v2 in moto runs no authorizer")
        head, payload, sig = self.token.split(".")
        tampered = f"{head}.{payload}.{sig[:-4]}{'AAAA' if not sig.endswith('AAAA') else 'BBBB'}"
        url = f"{self.output('api_endpoint')}/avatars/key_upload"
        status, _, _ = http("POST", url, b'{"extension":"jpg"}', {"Authorization": f"Bearer {tampered}"})
        assert status in (401, 403), f"a tampered token got {status}"
        status, _, _ = http("POST", url, b'{"extension":"jpg"}')
        assert status in (401, 403), f"no token got {status}"
        return f"tampered and missing tokens refused ({status})"

    def sns_probe(self):
        """An SQS queue subscribed to the topic for the run: proves the assets bucket's
        notification goes through SNS (the https webhook is not ours to read)."""
        self.suite.live_only("moto delivers no S3 notification unless a Lambda runs first")
        sqs = self.client("sqs")
        topic = self.output("topic_arn")
        queue = sqs.create_queue(QueueName=f"{self.prefix}-probe")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
        }]}
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
        sub = self.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True)
        self.probe = (queue, sub["SubscriptionArn"])
        return f"queue {self.prefix}-probe subscribed"

    def presigned_put(self):
        self.suite.live_only("the presigned URL comes from the presigner, which moto does not run")
        headers = self.upload.get("headers", {})
        status, _, answer = http("PUT", self.upload["url"], AVATAR.read_bytes(), headers)
        assert status == 200, f"PUT to the presigned URL: {status} {answer[:300]!r}"
        self.uploaded.append((self.uploads, self.upload["key"]))
        return f"{AVATAR.stat().st_size} bytes to s3://{self.uploads}/{self.upload['key']}"

    def processed_key(self):
        return "avatars/processed/" + self.upload["key"].rsplit(".", 1)[0] + ".jpg"

    def thumbnail_in_assets(self):
        self.suite.live_only("moto does not run the thumbnailer on an S3 event")
        s3 = self.client("s3")
        key = self.processed_key()
        until(f"s3://{self.assets}/{key}", lambda: s3.head_object(Bucket=self.assets, Key=key), within=120, every=3)
        data = s3.get_object(Bucket=self.assets, Key=key)["Body"].read()
        assert jpeg_size(data) == (512, 512), f"the thumbnail is {jpeg_size(data)}"
        self.thumbnail = data
        return f"{key}: 512x512 JPEG, {len(data)} bytes"

    def served_through_cloudfront(self):
        self.suite.live_only("moto's CloudFront serves no content")
        key = self.processed_key()
        for host in (self.output("assets_domain"), f"{self.subdomain}.{self.domain}"):
            def get(host=host):
                status, headers, body = http("GET", f"https://{host}/{key}")
                return body if status == 200 else None
            body = until(f"https://{host}/{key}", get, within=300, every=10)
            assert body == self.thumbnail, f"https://{host}/{key} serves other bytes"
        return f"https://{self.subdomain}.{self.domain}/{key} (and the distribution's domain) serve the thumbnail"

    def notification_through_sns(self):
        self.suite.live_only("moto delivers no S3 notification unless a Lambda runs first")
        assert self.probe, "no probe queue"
        sqs, key = self.client("sqs"), self.processed_key()

        def received():
            for m in sqs.receive_message(QueueUrl=self.probe[0], WaitTimeSeconds=10, MaxNumberOfMessages=10).get("Messages", []):
                event = json.loads(json.loads(m["Body"])["Message"])
                if any(r["s3"]["object"]["key"] == key for r in event.get("Records", [])):
                    return True
            return False

        until(f"the notification of {key} through SNS", received, within=120, every=0)
        return f"the S3 event for {key} arrived through the topic"

    def empty_what_the_suite_filled(self):
        """The uploads bucket holds the photo the suite PUT (the stack keeps uploads, and a
        bucket with objects cannot be deleted): remove every version of it."""
        s3 = self.client("s3")
        removed = 0
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.uploads):
            objects = [{"Key": o["Key"], "VersionId": o["VersionId"]} for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            if objects:
                s3.delete_objects(Bucket=self.uploads, Delete={"Objects": objects})
                removed += len(objects)
        return f"{removed} object version(s) removed from {self.uploads}"

    def destroy(self):
        out = self.run("destroy", "--auto-approve")
        self.destroyed = True
        notes = [line.strip() for line in out.stdout.splitlines() if "not deleted" in line or "forgotten" in line or "kept" in line]
        return "; ".join(notes)

    def still_there(self, arn):
        """Whether the resource the tagging API lists is still there, asked of its own service
        (the tagging API lists deleted resources for minutes)."""
        service, rest = arn.split(":")[2], arn.split(":", 5)[5]
        gone = ("NoSuchBucket", "NotFound", "ResourceNotFoundException", "NoSuchEntity", "NoSuchDistribution",
                "NoSuchOriginAccessControl", "404", "NoSuchHostedZone")
        try:
            if service == "s3":
                self.client("s3").head_bucket(Bucket=rest)
            elif service == "lambda":
                self.client("lambda").get_function(FunctionName=arn)
            elif service == "sns":
                self.client("sns").get_topic_attributes(TopicArn=arn)
            elif service == "iam" and rest.startswith("role/"):
                self.client("iam").get_role(RoleName=rest.rsplit("/", 1)[1])
            elif service == "apigateway" and "/apis/" in rest:
                self.client("apigatewayv2", arn.split(":")[3]).get_api(ApiId=rest.split("/apis/")[1].split("/")[0])
            elif service == "cloudfront" and "distribution/" in rest:
                self.client("cloudfront", "us-east-1").get_distribution(Id=rest.rsplit("/", 1)[1])
            else:
                return True  # a kind this check cannot ask: reported as left
        except Exception as e:  # noqa: BLE001 - botocore's ClientError, by code
            code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
            if code in gone or "NotFound" in code:
                return False
            raise
        return True

    def nothing_left_behind(self):
        lineage = self.lineage
        left = []
        # By the engine's ownership tag (everything the tagging API covers, in both regions),
        # each confirmed by its own service.
        for region in sorted({self.region, "us-east-1"}):
            if lineage is None:
                break
            tagging = self.client("resourcegroupstaggingapi", region)
            for page in tagging.get_paginator("get_resources").paginate(TagFilters=[{"Key": OWNER_TAG, "Values": [lineage]}]):
                left += [m["ResourceARN"] for m in page["ResourceTagMappingList"] if self.still_there(m["ResourceARN"])]
        # By name, for what the tagging API does not cover: every page of each listing.
        p = self.prefix
        pages = lambda client, op, key, **kw: [x for page in client.get_paginator(op).paginate(**kw) for x in page.get(key, [])]  # noqa: E731
        left += [f"role {r['RoleName']}" for r in pages(self.client("iam"), "list_roles", "Roles")
                 if r["RoleName"].startswith(p) and not r["RoleName"].startswith(f"{p}-deployer-")]
        left += [f"function {f['FunctionName']}" for f in pages(self.client("lambda"), "list_functions", "Functions") if f["FunctionName"].startswith(p)]
        left += [f"bucket {b['Name']}" for b in pages(self.client("s3"), "list_buckets", "Buckets") if b["Name"] == self.uploads]
        left += [f"topic {t['TopicArn']}" for t in pages(self.client("sns"), "list_topics", "Topics") if t["TopicArn"].endswith(f":{self.topic_name}")]
        left += [f"api {a['Name']}" for a in self.all_apis() if a["Name"].startswith(p)]
        cloudfront = self.client("cloudfront", "us-east-1")
        host = f"{self.subdomain}.{self.domain}"
        dists = [d for page in cloudfront.get_paginator("list_distributions").paginate()
                 for d in page["DistributionList"].get("Items", [])]
        left += [f"distribution {d['Id']}" for d in dists if host in d["Aliases"].get("Items", [])]
        left += [f"origin access control {o['Name']}" for o in self.all_oacs() if o["Name"].startswith(p)]
        records = pages(self.client("route53"), "list_resource_record_sets", "ResourceRecordSets",
                        HostedZoneId=self.zone_id(), StartRecordName=host)
        left += [f"record {r['Name']} {r['Type']}" for r in records if r["Name"].rstrip(".") == host]
        # The adopted assets bucket is kept on destroy, as the spec says: not a leftover.
        left = [x for x in left if not x.endswith(f":::{self.assets}")]
        assert not left, f"left behind: {left}"
        return "nothing tagged with this lineage or named with the prefix, confirmed through each service"


    def all_apis(self):
        api, items, token = self.client("apigatewayv2"), [], None
        while True:
            page = api.get_apis(**({"NextToken": token} if token else {}))
            items += page.get("Items", [])
            token = page.get("NextToken")
            if not token:
                return items

    def all_oacs(self):
        cloudfront, items, marker = self.client("cloudfront", "us-east-1"), [], None
        while True:
            page = cloudfront.list_origin_access_controls(**({"Marker": marker} if marker else {}))["OriginAccessControlList"]
            items += page.get("Items", [])
            marker = page.get("NextMarker")
            if not page.get("IsTruncated") or not marker:
                return items

    def clean_up(self):
        """What the suite made itself; and the stack, if the destroy step did not run. Each step
        is guarded: one that fails is named and the others still run."""
        failed = []

        def guarded(what, fn):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - reported, the clean-up goes on
                failed.append(f"{what}: {type(e).__name__}: {e}")

        if not self.destroyed and self.engine:
            guarded("empty the uploads bucket", self.empty_what_the_suite_filled)
            guarded("destroy the stack", lambda: self.run("destroy", "--auto-approve", role=None))
        if self.probe:
            guarded("unsubscribe the probe", lambda: self.client("sns").unsubscribe(SubscriptionArn=self.probe[1]))
            guarded("delete the probe queue", lambda: self.client("sqs").delete_queue(QueueUrl=self.probe[0]))
        for bucket in (self.assets, self.state_bucket):
            guarded(f"delete the bucket {bucket}", lambda bucket=bucket: self.delete_bucket(bucket))
        for command in self.roles:
            name = f"{self.prefix}-deployer-{command}"
            guarded(f"delete the role {name}", lambda name=name: (
                self.client("iam").delete_role_policy(RoleName=name, PolicyName="cruddur-infra"),
                self.client("iam").delete_role(RoleName=name)))
        if self.made_kms_key:
            guarded("schedule the state key's deletion", lambda: self.client("kms").schedule_key_deletion(
                KeyId=self.made_kms_key, PendingWindowInDays=7))
        if self.pool:
            guarded("delete the user pool", lambda: self.client("cognito-idp").delete_user_pool(UserPoolId=self.pool))
        # Lambda makes a log group per function on first invocation.
        logs = self.client("logs")
        for name in ("thumbnailer", "authorizer", "presigner"):
            group = f"/aws/lambda/{self.prefix}-{name}"
            guarded(f"delete the log group {group}", lambda group=group: self.delete_log_group(logs, group))
        for f in failed:
            say(f"clean-up FAILED: {f}")
        return failed

    @staticmethod
    def delete_log_group(logs, group):
        try:
            logs.delete_log_group(logGroupName=group)
        except logs.exceptions.ResourceNotFoundException:
            pass

    def delete_bucket(self, bucket):
        s3 = self.client("s3")
        try:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                objects = [{"Key": o["Key"], "VersionId": o["VersionId"]} for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                if objects:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
            s3.delete_bucket(Bucket=bucket)
        except s3.exceptions.NoSuchBucket:
            pass


def preflight(stack):
    """Refuses what cannot work, before anything is created."""
    cert = stack.client("acm", "us-east-1").describe_certificate(CertificateArn=stack.certificate)["Certificate"]
    host = f"{stack.subdomain}.{stack.domain}"
    names = set(cert.get("SubjectAlternativeNames", [])) | {cert["DomainName"]}
    if cert["Status"] != "ISSUED" or not (host in names or f"*.{stack.domain}" in names):
        raise SystemExit(f"{stack.certificate} is {cert['Status']} for {sorted(names)}: it must be ISSUED and cover {host}")
    stack.zone_id()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moto", action="store_true", help="run against a moto server the suite starts")
    parser.add_argument("--keep-work", action="store_true", help="keep the working directory (state, logs)")
    args = parser.parse_args()

    if not args.moto:
        if os.environ.get("CRUDDUR_LIVE_AWS") != "1":
            raise SystemExit("scripts/test-aws deploys into a real AWS account and costs money: set CRUDDUR_LIVE_AWS=1 to run it "
                             "(or --moto for the emulator)")
        missing = [v for v in ("DOMAIN_NAME", "ASSETS_CERTIFICATE_ARN") if not os.environ.get(v)]
        if missing:
            raise SystemExit(f"set {' and '.join(missing)} (see scripts/live_acceptance.py)")

    work = Path(tempfile.mkdtemp(prefix="cruddur-acceptance-"))
    moto = Moto(work) if args.moto else None
    suite = Suite(moto is not None)
    stack = Stack(args, suite, work, moto.endpoint if moto else None)
    say(f"account {stack.account}, region {stack.region}, prefix {stack.prefix}{' (moto)' if moto else ''}")
    say("it will create:" + "".join(f"\n  - {what}" for what in stack.creates()))
    say(f"expected duration: {'a few minutes' if moto else EXPECTED}")
    say(f"expected cost: {'none' if moto else COST}")
    say(f"working directory {work}")
    cleanup_failed = []
    try:
        stack.engine = engine_binary()
        if not suite.step("prerequisites (user pool and user, assets bucket to adopt, state bucket and key)", stack.prerequisites):
            return 1
        if not moto:
            preflight(stack)
        if not suite.step("one role per command, with the policy iam-policy prints", stack.deployer_roles):
            return 1
        if suite.step("apply the spec under the prefix (as the apply role)", stack.apply):
            suite.step("the second plan is empty (as the plan role)", stack.plan_is_empty)
            suite.step("drift right after apply is clean (as the drift role)", stack.drift_is_clean)
            suite.step("the state in S3 is sealed with KMS", stack.state_is_sealed)
            suite.step("deployed as declared (through the AWS API)", stack.deployed_as_declared)
            suite.step("Cognito access token", stack.cognito_token)
            suite.step("the API through the authorizer hands out an upload URL", stack.api_with_token)
            suite.step("the authorizer refuses a tampered or missing token", stack.api_refuses_tampered_token)
            suite.step("an SQS probe subscribed to the assets topic", stack.sns_probe)
            suite.step("a photo PUT to the presigned URL", stack.presigned_put)
            suite.step("the thumbnail lands in the assets bucket", stack.thumbnail_in_assets)
            suite.step("CloudFront serves the thumbnail", stack.served_through_cloudfront)
            suite.step("the assets bucket's notification arrives through SNS", stack.notification_through_sns)
            suite.step("a code change goes live, rollback and release again", stack.code_change_and_rollback)
            suite.step("empty what the suite put into the uploads bucket", stack.empty_what_the_suite_filled)
        suite.step("destroy (as the destroy role)", stack.destroy)
        suite.step("nothing left behind", stack.nothing_left_behind)
    finally:
        try:
            cleanup_failed = stack.clean_up()
        finally:
            if moto:
                moto.stop()
            if not args.keep_work and not suite.failed() and not cleanup_failed:
                shutil.rmtree(work, ignore_errors=True)
    say("")
    for name, status, took, _ in suite.results:
        say(f"  {status:>7}  {took:6.1f} s  {name}")
    failed = suite.failed()
    say(f"\n{len(suite.results) - len(failed)} of {len(suite.results)} steps passed or were skipped by name; "
        f"{len(failed)} failed; {len(cleanup_failed)} clean-up step(s) failed{f' (logs in {work})' if failed or cleanup_failed else ''}")
    return 1 if failed or cleanup_failed else 0


if __name__ == "__main__":
    sys.exit(main())
