"""The avatar pipeline, run once on the emulator after scripts/demo has applied the stack.

moto runs no Lambda and no API Gateway authorizer, so each function's deployed zip is fetched
(its hash checked against the CodeSha256 Lambda holds), unpacked, and its real `bootstrap` run
through the Lambda Runtime API emulator the tests use (tools/aws-emulator's `lambda-runtime`,
its path in $LAMBDA_RUNTIME), with the function's deployed environment, as the Lambda service would. The flow is the one the app runs:

  a Cognito user signs in -> the authorizer checks the access token -> the presigner hands out
  an upload URL -> a photo is PUT to it -> the thumbnailer writes the 512x512 JPEG

Usage: LAMBDA_RUNTIME=PATH demo_avatar.py STATE_FILE ZIPS_DIR   (AWS_ENDPOINT_URL and credentials in the environment;
ZIPS_DIR is where the engine packaged the Lambdas: <cargo target dir>/lambda-zips)
"""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import boto3

from live_acceptance import jpeg_size  # the one JPEG header reader, beside this script

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "fixtures" / "avatar.jpg"
RUNTIME = os.environ["LAMBDA_RUNTIME"]
USER, PASSWORD = "andrew", "Passw0rd!Passw0rd"


def say(*a):
    print(*a, flush=True)


class Function:
    """A deployed function's real bootstrap, run locally against the Runtime API."""

    def __init__(self, name, zip_path, workdir, extra_env=None):
        config = boto3.client("lambda").get_function_configuration(FunctionName=name)
        # moto keeps the code but serves no download, so the zip apply uploaded is read from
        # where the engine packaged it, and checked against what Lambda holds.
        zipped = Path(zip_path).read_bytes()
        sha = base64.b64encode(hashlib.sha256(zipped).digest()).decode()
        assert sha == config["CodeSha256"], f"{name}: {zip_path} is not the code Lambda runs"
        with zipfile.ZipFile(io.BytesIO(zipped)) as z:
            path = Path(workdir) / name / "bootstrap"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(z.read("bootstrap"))
            path.chmod(0o755)
        env = {
            **config.get("Environment", {}).get("Variables", {}),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("MemorySize", 128)),
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
            "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
            "S3_FORCE_PATH_STYLE": "true",
            **(extra_env or {}),
        }
        # The Runtime API emulator the integration tests use too (tools/aws-emulator): events
        # in on its stdin, one JSON outcome per line out.
        self.log = Path(workdir) / f"{name}.log"
        command = [RUNTIME, "--bootstrap", str(path), "--function-name", name, "--log", str(self.log)]
        command += [arg for k, v in env.items() for arg in ("--env", f"{k}={v}")]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.name = name

    def invoke(self, event):
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: the runtime emulator ended; the function's log: {self.log}")
        outcome = json.loads(line)
        if "response" in outcome:
            return outcome["response"]
        raise SystemExit(f"{self.name} failed: {outcome.get('error') or outcome.get('failed')}")

    def stop(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main():
    state = json.loads(Path(sys.argv[1]).read_text())
    zips = Path(sys.argv[2])
    prefix = os.environ.get("NAME_PREFIX", "cruddur")

    def function(crate, extra_env=None):
        return Function(f"{prefix}-{crate}", zips / crate / "x86_64" / "bootstrap.zip", work, extra_env)

    outputs = {k: v["value"] for k, v in state.get("outputs", {}).items()}
    pool_id, client_id = os.environ["COGNITO_USER_POOL_ID"], os.environ["COGNITO_USER_POOL_CLIENT_ID"]
    uploads, assets = outputs["uploads_bucket_name"], outputs["assets_bucket_name"]
    started = time.monotonic()

    cognito = boto3.client("cognito-idp")
    cognito.admin_create_user(UserPoolId=pool_id, Username=USER)
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=USER, Password=PASSWORD, Permanent=True)
    tokens = cognito.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                   AuthParameters={"USERNAME": USER, "PASSWORD": PASSWORD})["AuthenticationResult"]
    access = tokens["AccessToken"]
    say(f"1. {USER} signs in to Cognito pool {pool_id}: an access token of {len(access)} bytes")

    work = tempfile.mkdtemp(prefix="cruddur-demo-lambdas-")
    jwks = f"{os.environ['AWS_ENDPOINT_URL']}/{pool_id}/.well-known/jwks.json"
    functions = []
    try:
        authorizer = function("authorizer", {"JWKS_URL": jwks})
        functions.append(authorizer)
        event = json.loads((ROOT / "lambdas/presigner/tests/fixtures/key_upload.json").read_text())
        context = {k: v for k, v in event["requestContext"].items() if k != "authorizer"}
        auth_event = {
            "version": "2.0", "type": "REQUEST", "routeKey": "POST /avatars/key_upload",
            "routeArn": "arn:aws:execute-api:us-east-1:123456789012:demo/$default/POST/avatars/key_upload",
            "identitySource": [f"Bearer {access}"], "rawPath": "/avatars/key_upload", "rawQueryString": "",
            "headers": {"authorization": f"Bearer {access}"}, "requestContext": context,
        }
        decision = authorizer.invoke(auth_event)
        assert decision.get("isAuthorized") is True, f"the authorizer refused the token: {decision}"
        say(f"2. the authorizer (the deployed bootstrap) verifies the token: allowed, sub {decision['context']['sub']}")

        presigner = function("presigner")
        functions.append(presigner)
        event["requestContext"]["authorizer"] = {"lambda": decision["context"]}
        event["body"] = json.dumps({"extension": "jpg"})
        answer = presigner.invoke(event)
        assert answer.get("statusCode") == 200, f"the presigner answered {answer}"
        body = json.loads(answer["body"])
        url, key = body["url"], body["key"]
        say(f"3. the presigner hands out a PUT URL for s3://{uploads}/{key}, valid {body['expires_in']} s")

        photo = PHOTO.read_bytes()
        req = urllib.request.Request(url, data=photo, method="PUT", headers={"Content-Type": "image/jpeg"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 200, f"PUT answered {r.status}"
        w, h = jpeg_size(photo)
        say(f"4. the browser PUTs a {w}x{h} photo ({len(photo) // 1024} KiB) to that URL")

        thumbnailer = function("thumbnailer")
        functions.append(thumbnailer)
        s3_event = json.loads((ROOT / "lambdas/thumbnailer/tests/fixtures/s3_put.json").read_text())
        record = s3_event["Records"][0]["s3"]
        record["bucket"].update({"name": uploads, "arn": f"arn:aws:s3:::{uploads}"})
        record["object"].update({"key": urllib.parse.quote(key), "size": len(photo)})
        thumbnailer.invoke(s3_event)
        out_key = f"{os.environ.get('THUMBING_S3_FOLDER_OUTPUT', 'avatars/processed/')}{key.rsplit('.', 1)[0]}.jpg"
        thumb = boto3.client("s3").get_object(Bucket=assets, Key=out_key)
        data = thumb["Body"].read()
        tw, th = jpeg_size(data)
        say(f"5. the thumbnailer writes s3://{assets}/{out_key}: {tw}x{th} {thumb['ContentType']}, {len(data) // 1024} KiB")
        assert (tw, th) == (512, 512), f"expected 512x512, got {tw}x{th}"
        say(f"   served at {outputs.get('assets_url', '(no assets_url output)')}/{out_key}")
    finally:
        for f in functions:
            f.stop()
    say(f"the avatar pipeline ran in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
