"""Creates, in the emulator at $AWS_ENDPOINT_URL (or the account of the usual credential chain),
what the Cruddur stack expects to exist already (the original created these by hand): the
assets bucket, a public hosted zone, an ACM certificate (in us-east-1, where CloudFront takes
them), and a Cognito user pool with an app client. Prints the variables to export, in shell
syntax, including the demo's values of the account-specific variables the spec leaves without
a default (override any of them in the environment).

The region is AWS_REGION (or AWS_DEFAULT_REGION, or the profile's); without one it stops before
creating anything. The bucket comes first, so that a name S3 refuses stops it before anything
else exists."""

import os
import sys

import boto3

session = boto3.session.Session()
region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or session.region_name
if not region:
    sys.exit("no region: set AWS_REGION (the prerequisites are made where the stack will be)")

domain = os.environ.get("DOMAIN_NAME", "cruddur.local")
assets_bucket = os.environ.get("ASSETS_BUCKET_NAME", "assets.cruddur.local")
demo = {
    "DOMAIN_NAME": domain,
    "ASSETS_BUCKET_NAME": assets_bucket,
    "UPLOADS_BUCKET_NAME": os.environ.get("UPLOADS_BUCKET_NAME", "cruddur-uploaded-avatars"),
    "THUMBING_WEBHOOK_URL": os.environ.get("THUMBING_WEBHOOK_URL", "https://api.cruddur.local/webhooks/avatar"),
    "FRONTEND_ORIGIN": os.environ.get("FRONTEND_ORIGIN", "https://cruddur.local"),
}

s3 = session.client("s3", region_name=region)
if region == "us-east-1":
    s3.create_bucket(Bucket=assets_bucket)
else:
    s3.create_bucket(Bucket=assets_bucket, CreateBucketConfiguration={"LocationConstraint": region})
route53 = session.client("route53", region_name=region)
route53.create_hosted_zone(Name=domain, CallerReference="cruddur-demo")
acm = session.client("acm", region_name="us-east-1")
cert = acm.request_certificate(DomainName=f"assets.{domain}", ValidationMethod="DNS")["CertificateArn"]
cognito = session.client("cognito-idp", region_name=region)
pool = cognito.create_user_pool(PoolName="cruddur-users")["UserPool"]["Id"]
client = cognito.create_user_pool_client(UserPoolId=pool, ClientName="cruddur-frontend")["UserPoolClient"]["ClientId"]

for name, value in {**demo, "ASSETS_CERTIFICATE_ARN": cert, "COGNITO_USER_POOL_ID": pool,
                    "COGNITO_USER_POOL_CLIENT_ID": client}.items():
    print(f"export {name}={value}")
print(f"created in {region}: bucket {assets_bucket}, hosted zone {domain}, certificate, user pool {pool}", file=sys.stderr)
