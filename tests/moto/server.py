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
- Lambda `PublishVersion` after a version was deleted: moto numbers the new version one more
  than the count of versions left, reusing a number still in use (publish 1, 2, 3, delete 1,
  publish: a second "3"); Lambda counts on from the highest number it ever gave the function.
"""

import json
import sys

import copy

from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.awslambda.models import LambdaStorage
from moto.route53.exceptions import ResourceRecordAlreadyExists
from moto.route53.models import Route53Backend
from moto.s3.responses import S3Response


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

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
