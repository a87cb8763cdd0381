"""Creates, in the emulator at $AWS_ENDPOINT_URL, what the Cruddur stack expects to exist
already (the original created these by hand): a public hosted zone, an ACM certificate, a
Cognito user pool with an app client, and the assets bucket. Prints the variables to
export, shell syntax."""

import os
import sys

import boto3

domain = os.environ.get("DOMAIN_NAME", "cruddur.local")
assets_bucket = os.environ.get("ASSETS_BUCKET_NAME", "assets.cruddur.local")

route53 = boto3.client("route53")
route53.create_hosted_zone(Name=domain, CallerReference="cruddur-demo")
acm = boto3.client("acm", region_name="us-east-1")
cert = acm.request_certificate(DomainName=f"assets.{domain}", ValidationMethod="DNS")["CertificateArn"]
cognito = boto3.client("cognito-idp")
pool = cognito.create_user_pool(PoolName="cruddur-users")["UserPool"]["Id"]
client = cognito.create_user_pool_client(UserPoolId=pool, ClientName="cruddur-frontend")["UserPoolClient"]["ClientId"]
boto3.client("s3").create_bucket(Bucket=assets_bucket)

print(f"export ASSETS_CERTIFICATE_ARN={cert}")
print(f"export COGNITO_USER_POOL_ID={pool}")
print(f"export COGNITO_USER_POOL_CLIENT_ID={client}")
print(f"created hosted zone {domain}, certificate, user pool {pool}, bucket {assets_bucket}", file=sys.stderr)
