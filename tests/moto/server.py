"""moto_server, with the AWS operations moto 5.2 lacks that the engine relies on.

Started by the integration-test harness (tests/integration/harness.rs) in place of the plain
`moto_server` entry point, with the same arguments. Each addition answers as AWS documents it;
none of them relaxes or fakes a check.

- API Gateway v2 `GetAuthorizers`: moto raises NotImplementedError (HTTP 500). The engine lists
  an API's authorizers to find one an interrupted create made (authorizers take no tags; their
  names are unique within an API).
- S3 `GetBucketNotificationConfiguration` of a bucket without notifications: moto answers with
  a `GetBucketNotificationResponse` document the AWS SDKs refuse to parse; S3 answers an empty
  `NotificationConfiguration`. And moto keeps `EventBridgeConfiguration` when it is put but
  leaves it out when it is read; S3 returns it.
- Route53 `CREATE` of a record set whose name and type exist already: moto refuses it only when
  the very same change was made before (values included); Route53 refuses any, comparing names
  without case or trailing dot ("Tried to create resource record set [...] but it already
  exists").
- API Gateway v2 `CreateRoute` with a route key the API has: moto makes a second route; API
  Gateway refuses it (409 `ConflictException`, "Route with key ... already exists for this API").
- CloudFront `CreateOriginAccessControl` with a name in use: moto makes a second one; CloudFront
  refuses it (409 `OriginAccessControlAlreadyExists`), names being unique in an account.
- Lambda `AddPermission` with a statement id the policy holds: moto appends a second statement;
  Lambda refuses it (409 `ResourceConflictException`, "The statement id (...) provided already
  exists").
- Lambda `PublishVersion` after a version was deleted: moto numbers the new version one more
  than the count of versions left, reusing a number still in use (publish 1, 2, 3, delete 1,
  publish: a second "3"); Lambda counts on from the highest number it ever gave the function.

Speed, not behaviour (the answers stay moto's):

- IAM's AWS managed policies (MOTO_IAM_LOAD_MANAGED_POLICIES=true: the stack attaches
  AWSLambdaBasicExecutionRole, and AWS refuses an ARN it does not hold) are parsed from moto's
  5 MB document once per server, and an IAM backend builds its 1,595 policy objects only when a
  request reads them. moto parses and builds them in every IAM backend it creates: one per
  partition and account, again at every reset and when a request's access key is looked up.
  Measured under a whole-stack crash matrix (py-spy): three fifths of the server's CPU.
- Every Cognito user pool moto makes imports the same RSA key from moto's own file (recovering
  its primes costs about 10 ms); the key is imported once per server and shared.
- moto lists its own package folder on every request to tell a service's name from a host name;
  the folder does not change while the server runs, so it is listed once.

With `CRUDDUR_MOTO_IDLE_EXIT=SECONDS` (the test harness's pooled servers) the server stops by
itself once no request came for that long, and `GET /_cruddur/pool-id` answers its
`CRUDDUR_MOTO_POOL_ID`: after a pooled server stopped, another may listen on its port, and the
harness must not take that one for it.
"""

import json
import os
import threading
import time
import sys

import copy
import functools
import types

from joserfc import jwk

from moto.apigatewayv2.exceptions import APIGatewayV2Error
from moto.apigatewayv2.models import Api
from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaStorage
from moto.awslambda.policy import Policy
from moto import backends as moto_backends
from moto.cognitoidp import models as cognito_models
from moto.cloudfront.exceptions import CloudFrontException
from moto.cloudfront.models import CloudFrontBackend
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, IAMBackend
from moto.route53.exceptions import ResourceRecordAlreadyExists
from moto.route53.models import Route53Backend
from moto.s3.responses import S3Response
from moto.settings import load_iam_aws_managed_policies


def get_authorizers(self):
    api_id = self.path.split("/")[-2]
    api = self.apigatewayv2_backend.get_api(api_id)
    items = [authorizer.to_json() for authorizer in api.authorizers.values()]
    return 200, {}, json.dumps({"items": items})


ApiGatewayV2Response.get_authorizers = get_authorizers

_get_bucket_notification = S3Response.get_bucket_notification
EMPTY_NOTIFICATION_CONFIGURATION = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
)


def get_bucket_notification(self):
    config = self.backend.get_bucket_notification_configuration(self.bucket_name)
    if not config:
        return 200, {"Content-Type": "application/xml"}, EMPTY_NOTIFICATION_CONFIGURATION
    status, headers, body = _get_bucket_notification(self)
    if getattr(config, "event_bridge", None) is not None:
        closing = "</NotificationConfiguration>"
        text = body.decode() if isinstance(body, bytes) else body
        body = text.replace(closing, "<EventBridgeConfiguration></EventBridgeConfiguration>" + closing)
    return status, headers, body


S3Response.get_bucket_notification = get_bucket_notification

_change_resource_record_sets = Route53Backend.change_resource_record_sets


def _record_name(name):
    return name.rstrip(".").lower()


def change_resource_record_sets(self, zoneid, change_list):
    zone = self.get_hosted_zone(zoneid)
    for change in change_list:
        if change["Action"] != "CREATE":
            continue
        new = change["ResourceRecordSet"]
        for rrset in zone.rrsets:
            if (
                _record_name(rrset.name) == _record_name(new["Name"])
                and rrset.type == new["Type"]
                and rrset.set_identifier == new.get("SetIdentifier")
            ):
                raise ResourceRecordAlreadyExists(name=_record_name(new["Name"]) + ".", _type=new["Type"])
    return _change_resource_record_sets(self, zoneid, change_list)


Route53Backend.change_resource_record_sets = change_resource_record_sets


_create_route = Api.create_route


class RouteKeyInUse(APIGatewayV2Error):
    code = 409

    def __init__(self, route_key):
        super().__init__("ConflictException", f"Route with key {route_key} already exists for this API")


def create_route(self, *args, **kwargs):
    route_key = kwargs.get("route_key")
    if any(route.route_key == route_key for route in self.routes.values()):
        raise RouteKeyInUse(route_key)
    return _create_route(self, *args, **kwargs)


Api.create_route = create_route

_create_origin_access_control = CloudFrontBackend.create_origin_access_control


class OriginAccessControlAlreadyExists(CloudFrontException):
    code = 409

    def __init__(self, name):
        super().__init__(
            "OriginAccessControlAlreadyExists",
            f"An origin access control with the same name already exists: {name}",
        )


def create_origin_access_control(self, config_dict):
    name = config_dict.get("Name")
    if any(existing.name == name for existing in self.origin_access_controls.values()):
        raise OriginAccessControlAlreadyExists(name)
    return _create_origin_access_control(self, config_dict)


CloudFrontBackend.create_origin_access_control = create_origin_access_control

_add_statement = Policy.add_statement


class StatementIdInUse(LambdaClientError):
    code = 409

    def __init__(self, sid):
        super().__init__(
            "ResourceConflictException",
            f"The statement id ({sid}) provided already exists. Please provide a new statement id, "
            "or remove the existing statement.",
        )


def _same_policy(statement, qualifier):
    # moto keeps a function's statements for every qualifier in one list; Lambda keeps one
    # policy per qualifier. arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    resource = statement.get("Resource", "")
    return resource.endswith(":" + qualifier) if qualifier else resource.count(":") == 6


def add_statement(self, raw, qualifier=None):
    sid = json.loads(raw).get("StatementId")
    if sid and any(st.get("Sid") == sid and _same_policy(st, qualifier) for st in self.statements):
        raise StatementIdInUse(sid)
    return _add_statement(self, raw, qualifier)


Policy.add_statement = add_statement


def publish_version(self, name_or_arn, description=""):
    function = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
    entry = self._functions.get(function.function_name)
    if not entry or not entry["latest"]:
        return None
    versions = entry["versions"]
    if versions and not function.code_or_config_updated:
        # Nothing changed since the newest version was published: Lambda answers with it.
        return versions[-1]
    function.code_or_config_updated = False
    highest = max([entry.get("highest", 0)] + [int(v.version) for v in versions])
    entry["highest"] = highest + 1
    fn = copy.copy(entry["latest"])
    fn.set_version(highest + 1)
    if description:
        fn.description = description
    versions.append(fn)
    self._arns[fn.function_arn] = fn
    return fn


LambdaStorage.publish_version = publish_version


@functools.cache
def _aws_managed_policy_document():
    return json.loads(aws_managed_policies_data)


def _aws_managed_policies(backend):
    return [
        AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, data)
        for name, data in _aws_managed_policy_document().items()
    ]


def _managed_policies(self):
    policies = self.__dict__.get("_cruddur_managed_policies")
    if policies is None:
        aws = _aws_managed_policies(self) if load_iam_aws_managed_policies() else []
        policies = {policy.arn: policy for policy in aws}
        self.__dict__["_cruddur_managed_policies"] = policies
    return policies


def _set_managed_policies(self, policies):
    self.__dict__["_cruddur_managed_policies"] = policies


# IAMBackend.__init__ assigns both: the AWS ones are left for the first read of the dict.
IAMBackend._init_aws_policies = lambda self: []
IAMBackend._init_managed_policies = lambda self: None
IAMBackend.managed_policies = property(_managed_policies, _set_managed_policies)


class _RSAKeyImportedOnce:
    """`jwk.RSAKey` as moto's Cognito models use it: the same key document gives the same key."""

    _keys = {}

    @classmethod
    def import_key(cls, data, *args, **kwargs):
        if args or kwargs:
            return jwk.RSAKey.import_key(data, *args, **kwargs)
        text = json.dumps(data, sort_keys=True)
        if text not in cls._keys:
            cls._keys[text] = jwk.RSAKey.import_key(data)
        return cls._keys[text]


cognito_models.jwk = types.SimpleNamespace(RSAKey=_RSAKeyImportedOnce)

_moto_modules = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: _moto_modules

def _stop_when_idle(seconds):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    last = [time.monotonic()]
    call = DomainDispatcherApplication.__call__

    def counted(self, environ, start_response):
        last[0] = time.monotonic()
        if environ.get("PATH_INFO") == "/_cruddur/pool-id":
            body = os.environ.get("CRUDDUR_MOTO_POOL_ID", "").encode()
            # With a length, not chunked: the harness reads the body as it is.
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        return call(self, environ, start_response)

    DomainDispatcherApplication.__call__ = counted

    def watch():
        while True:
            time.sleep(5)
            if time.monotonic() - last[0] > seconds:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


if os.environ.get("CRUDDUR_MOTO_IDLE_EXIT"):
    _stop_when_idle(float(os.environ["CRUDDUR_MOTO_IDLE_EXIT"]))

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
